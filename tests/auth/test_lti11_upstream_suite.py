"""ltiauthenticator 1.6.3's LTI 1.1 tests, scenario by scenario, on ``HubKitLTI11Authenticator`` (issue 21).

Upstream's ``tests/lti11/test_lti11_authenticator.py``, ``test_lti11_handlers.py``,
``test_lti11_validator.py`` and ``tests/test_utils.py`` (tag 1.6.3; its PyPI sdist ships no tests) call
the authenticator and ``LTI11LaunchValidator`` with mocked handlers and a patched validator. Here every
scenario is a real launch: upstream's launch parameters (its ``get_launch_args`` fixture: consumer
``my_consumer_key``, the same Canvas fields), OAuth 1.0a HMAC-SHA1 signed for the hub's launch URL and
POSTed to a real hub whose only LMS is that consumer; a scenario that mutates parameters after signing
does so the same way here. Where upstream expects ``HTTPError`` the hub must answer 4xx and create no
user; where it expects a valid launch, 302 and the user. Each test's docstring names the upstream test.

Four upstream authenticator tests patch the validator to accept anything (``auth_args``, a launch from
2020 with the dummy signature ``abc123``) and then check the username rule; here the same parameters are
signed now instead, since HubKit verifies every launch, and the username outcomes are upstream's. All
scenarios pass with upstream's outcomes (docs/auth.md lists no difference for this suite).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from conftest import CRYPT_ENV, start_hub
from oauthlib.oauth1.rfc5849 import signature  # type: ignore[import-untyped]
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from hubkit.auth.lti11 import HubKitLTI11Authenticator
from hubkit_testing.hub import Hub

KEY, SECRET = "my_consumer_key", "my_shared_secret"
UPSTREAM_USER_ID = "185d6c59731a553009ca9b59ca3a885100000"


def hub_config(extra: str = "") -> str:
    return f"""
c.JupyterHub.authenticator_class = "hubkit-lti11"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.HubKitLTI11Authenticator.consumers = {{{KEY!r}: {SECRET!r}}}
c.HubKitLTI11Authenticator.id_range = (3010000, 3010999)
{extra}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A hub trusting upstream's test consumer, with upstream's default ``username_key``."""
    hub = start_hub(tmp_path_factory, hub_config())
    try:
        yield hub
    finally:
        hub.stop()


def launch_args(
    hub: Hub,
    key: str = KEY,
    secret: str = SECRET,
    oauth_callback: str | None = "about:blank",
    **overrides: str,
) -> dict[str, str]:
    """Upstream's ``get_launch_args`` launch (an instructor from Canvas), signed for this hub's launch URL;
    ``overrides`` change parameters before signing (None-valued ones are not supported: drop them)."""
    args = {
        "oauth_consumer_key": key,
        "oauth_timestamp": str(int(time.time())),
        "oauth_nonce": secrets.token_urlsafe(32),
        "oauth_signature_method": "HMAC-SHA1",
        "oauth_version": "1.0",
        "context_id": "888efe72d4bbbdf90619353bb8ab5965ccbe9b3f",
        "context_label": "Introduction to Data Science",
        "context_title": "Introduction101",
        "course_lineitems": "https://canvas.instructure.com/api/lti/courses/1/line_items",
        "custom_canvas_assignment_title": "test-assignment",
        "custom_canvas_course_id": "616",
        "custom_canvas_enrollment_state": "active",
        "custom_canvas_user_id": "1091",
        "custom_canvas_user_login_id": "student1@example.com",
        "ext_roles": "urn:lti:instrole:ims/lis/Instructor",
        "launch_presentation_document_target": "iframe",
        "launch_presentation_height": "1000",
        "launch_presentation_locale": "en",
        "launch_presentation_return_url": (
            "https://canvas.instructure.com/courses/161/external_content/success/external_tool_redirect"
        ),
        "launch_presentation_width": "1000",
        "lis_outcome_service_url": (
            "http://www.imsglobal.org/developers/LTI/test/v1p1/common/tool_consumer_outcome.php"
            "?b64=MTIzNDU6OjpzZWNyZXQ="
        ),
        "lis_person_contact_email_primary": "student1@example.com",
        "lis_person_name_family": "Bar",
        "lis_person_name_full": "Foo Bar",
        "lis_person_name_given": "Foo",
        "lti_message_type": "basic-lti-launch-request",
        "lis_result_sourcedid": "feb-123-456-2929::28883",
        "lti_version": "LTI-1p0",
        "resource_link_id": "888efe72d4bbbdf90619353bb8ab5965ccbe9b3f",
        "resource_link_title": "Test-Assignment",
        "roles": "Instructor",
        "tool_consumer_info_product_family_code": "canvas",
        "tool_consumer_info_version": "cloud",
        "tool_consumer_instance_contact_email": "notifications@mylms.com",
        "tool_consumer_instance_guid": "srnuz6h1U8kOMmETzoqZTJiPWzbPXIYkAUnnAJ4u:test-lms",
        "tool_consumer_instance_name": "myedutool",
        "user_id": UPSTREAM_USER_ID,
        "user_image": "https://lms.example.com/avatar-50.png",
        "my_key": "this_value",
    }
    if oauth_callback is not None:
        args["oauth_callback"] = oauth_callback
    args.update(overrides)
    base = signature.signature_base_string(
        "POST",
        signature.base_string_uri(hub.url + "/hub/lti/launch"),
        signature.normalize_parameters(list(args.items())),
    )
    args["oauth_signature"] = signature.sign_hmac_sha1(base, secret, "")
    return args


async def post_launch(hub: Hub, args: dict[str, str]) -> httpx.Response:
    async with hub.client() as c:
        return await c.post("/hub/lti/launch", data=args)


async def accepted(hub: Hub, args: dict[str, str], name: str) -> None:
    """The launch logs ``name`` in (302) and the hub has that user."""
    r = await post_launch(hub, args)
    assert r.status_code == 302, r.text
    await hub.api("GET", f"/users/{name}", expect=200)


async def refused(hub: Hub, args: dict[str, str]) -> None:
    """The launch is refused with a 4xx (upstream: ``HTTPError``) and creates no user (a fresh user id)."""
    r = await post_launch(hub, args)
    assert 400 <= r.status_code < 500, r.text
    for name in (args.get("custom_canvas_user_id"), args.get("user_id")):
        if name:
            await hub.api("GET", f"/users/{name}", expect=404)


def fresh(**overrides: str) -> dict[str, str]:
    """Overrides giving the launch a user nobody launched as yet, so a refusal can check 'no user'."""
    user = f"u{uuid.uuid4().hex[:12]}"
    return {"user_id": user, "custom_canvas_user_id": user, **overrides}


# --- test_lti11_authenticator.py ------------------------------------------------------------------


def test_authenticator_uri_scheme_defaults_to_auto() -> None:
    """Mirrors upstream ``test_authenticator_uri_scheme_defaults_to_auto``."""
    assert HubKitLTI11Authenticator().uri_scheme == "auto"


def test_authenticator_uri_scheme_setter_is_case_insenstive() -> None:
    """Mirrors upstream ``test_authenticator_uri_scheme_setter_is_case_insenstive``."""
    authenticator = HubKitLTI11Authenticator()
    authenticator.uri_scheme = "Https"
    assert authenticator.uri_scheme == "https"


def request_with(headers: dict[str, str]) -> HTTPServerRequest:
    """A real tornado request as the hub's launch handler receives it (behind a proxy)."""
    line = RequestStartLine("POST", "/hub/lti/launch", "HTTP/1.1")
    return HTTPServerRequest(headers=HTTPHeaders({"Host": "hub", **headers}), start_line=line)


def test_authenticator_infers_uri_scheme_if_set_to_auto() -> None:
    """Mirrors upstream ``test_authenticator_infers_uri_scheme_if_set_to_auto`` (which patches
    ``get_browser_protocol``): with ``auto`` the scheme is the one the browser used, from the proxy's
    ``X-Forwarded-Proto``."""
    authenticator = HubKitLTI11Authenticator()
    authenticator.uri_scheme = "auto"
    assert authenticator.get_uri_scheme(request_with({"X-Forwarded-Proto": "https"})) == "https"
    assert authenticator.get_uri_scheme(request_with({})) == "http"


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_authenticator_returns_manually_specified_uri_scheme(scheme: str) -> None:
    """Mirrors upstream ``test_authenticator_returns_manually_specified_uri_scheme``."""
    authenticator = HubKitLTI11Authenticator()
    authenticator.uri_scheme = scheme
    assert authenticator.get_uri_scheme(request_with({})) == scheme


async def test_authenticator_uses_lti11validator(hub: Hub) -> None:
    """Mirrors upstream ``test_authenticator_uses_lti11validator``: the authenticator validates the
    launch (upstream checks that the patched validator is called; here a signed launch is admitted and
    the same launch with upstream's dummy signature ``abc123`` is refused)."""
    args = launch_args(hub, **fresh())
    await accepted(hub, args, args["custom_canvas_user_id"])
    forged = launch_args(hub, **fresh())
    forged["oauth_signature"] = "abc123"
    await refused(hub, forged)


async def test_authenticator_returns_auth_dict_when_custom_canvas_user_id_is_empty(hub: Hub) -> None:
    """Mirrors upstream ``test_authenticator_returns_auth_dict_when_custom_canvas_user_id_is_empty``:
    an empty ``custom_canvas_user_id`` falls back to ``user_id``."""
    await accepted(hub, launch_args(hub, custom_canvas_user_id=""), UPSTREAM_USER_ID)


async def test_authenticator_returns_correct_username_when_using_lis_person_contact_email_primary(
    hub_factory: Callable[..., Hub],
) -> None:
    """Mirrors upstream ``test_authenticator_returns_correct_username_when_using_lis_person_contact_email_
    primary``: ``username_key = "lis_person_contact_email_primary"`` names the user by e-mail."""
    email_hub = hub_factory(
        config=hub_config('c.HubKitLTI11Authenticator.username_key = "lis_person_contact_email_primary"'),
        env=CRYPT_ENV,
    )
    await accepted(email_hub, launch_args(email_hub), "student1@example.com")


async def test_empty_username_raises_http_error(hub: Hub) -> None:
    """Mirrors upstream ``test_empty_username_raises_http_error``: both ``custom_canvas_user_id`` and
    ``user_id`` empty is a 400."""
    r = await post_launch(hub, launch_args(hub, custom_canvas_user_id="", user_id=""))
    assert r.status_code == 400, r.text


# --- test_lti11_handlers.py -----------------------------------------------------------------------


async def test_lti_11_authenticate_handler_invokes_redirect_method(hub: Hub) -> None:
    """Mirrors upstream ``test_lti_11_authenticate_handler_invokes_redirect_method``: a launch ends in
    a redirect."""
    args = launch_args(hub, **fresh())
    r = await post_launch(hub, args)
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/hub/home"


async def test_lti_11_authenticate_handler_invokes_login_user_method(hub: Hub) -> None:
    """Mirrors upstream ``test_lti_11_authenticate_handler_invokes_login_user_method``: a launch logs
    the user in (the hub has the user and the response sets the login cookie)."""
    args = launch_args(hub, **fresh())
    r = await post_launch(hub, args)
    assert r.status_code == 302, r.text
    assert "jupyterhub-hub-login" in r.cookies
    await hub.api("GET", f"/users/{args['custom_canvas_user_id']}", expect=200)


def test_lti_11_handler_paths() -> None:
    """Mirrors upstream ``test_lti_11_handler_paths``."""
    handlers = HubKitLTI11Authenticator().get_handlers(None)
    assert handlers[0][0] == "/lti/launch"
    assert handlers[1][0] == "/lti11/config"


# --- test_lti11_validator.py ----------------------------------------------------------------------


async def test_basic_lti11_launch_request(hub: Hub) -> None:
    """Mirrors upstream ``test_basic_lti11_launch_request``."""
    args = launch_args(hub, **fresh())
    await accepted(hub, args, args["custom_canvas_user_id"])


# (upstream test, how its launch is changed after signing): all must be refused.
AFTER_SIGNING = [
    ("test_launch_with_missing_oauth_nonce_key", "oauth_nonce", None),
    ("test_launch_with_empty_oauth_nonce_value", "oauth_nonce", ""),
    ("test_launch_with_missing_oauth_timestamp_key", "oauth_timestamp", None),
    ("test_launch_with_missing_oauth_consumer_key_key", "oauth_consumer_key", None),
    ("test_launch_with_empty_oauth_consumer_key_value", "oauth_consumer_key", ""),
    ("test_launch_with_fake_oauth_consumer_key_value", "oauth_consumer_key", "fake_consumer_key"),
    ("test_launch_with_missing_oauth_signature_method_key", "oauth_signature_method", None),
    ("test_launch_with_empty_oauth_signature_method_value", "oauth_signature_method", ""),
    ("test_launch_with_missing_oauth_version_key", "oauth_version", None),
    ("test_launch_with_empty_oauth_version_value", "oauth_version", ""),
    ("test_launch_with_missing_oauth_signature_key", "oauth_signature", None),
    ("test_launch_with_empty_oauth_signature_value", "oauth_signature", ""),
    ("test_unregistered_consumer_key", "oauth_consumer_key", "fake_consumer_key"),
    ("test_launch_with_missing_lti_message_type", "lti_message_type", None),
    ("test_launch_with_empty_lti_message_type", "lti_message_type", ""),
    ("test_launch_with_missing_lti_version", "lti_version", None),
    ("test_launch_with_empty_lti_version", "lti_version", ""),
    ("test_launch_with_missing_resource_link_id", "resource_link_id", None),
    ("test_launch_with_empty_resource_link_id", "resource_link_id", ""),
    ("test_launch_with_missing_user_id_key", "user_id", None),
    ("test_launch_with_empty_user_id_value", "user_id", ""),
    ("test_launch_with_same_oauth_timestamp_different_oauth_nonce", "oauth_nonce", "fake_nonce"),
    ("test_launch_with_same_oauth_nonce_different_oauth_timestamp", "oauth_timestamp", "0123456789"),
]


@pytest.mark.parametrize(("upstream", "name", "value"), AFTER_SIGNING, ids=[t[0] for t in AFTER_SIGNING])
async def test_a_launch_changed_after_signing_is_refused(
    hub: Hub, upstream: str, name: str, value: str | None
) -> None:
    """Mirrors the upstream validator test named by the parameter id: the launch is signed, then
    ``name`` is removed (None) or set to ``value``, and ``validate_launch_request`` must raise."""
    args = launch_args(hub, **fresh())
    if value is None:
        del args[name]
    else:
        args[name] = value
    await refused(hub, args)


async def test_unregistered_shared_secret(hub: Hub) -> None:
    """Mirrors upstream ``test_unregistered_shared_secret``: signed with another secret."""
    await refused(hub, launch_args(hub, secret="my_other_shared_secret", **fresh()))


async def test_launch_with_missing_oauth_callback_key(hub: Hub) -> None:
    """Mirrors upstream ``test_launch_with_missing_oauth_callback_key`` (optional, LTI 1.1 §4)."""
    args = launch_args(hub, oauth_callback=None, **fresh())
    await accepted(hub, args, args["custom_canvas_user_id"])


async def test_launch_with_empty_oauth_callback_value(hub: Hub) -> None:
    """Mirrors upstream ``test_launch_with_empty_oauth_callback_value`` (upstream: no error)."""
    args = launch_args(hub, oauth_callback="", **fresh())
    await accepted(hub, args, args["custom_canvas_user_id"])


# --- tests/test_utils.py --------------------------------------------------------------------------


def test_get_protocol_with_more_than_one_value() -> None:
    """Mirrors upstream ``test_get_protocol_with_more_than_one_value``: of several forwarded protocols
    the first (the browser's) counts."""
    request = request_with({"X-Forwarded-Proto": "https,http,http"})
    assert HubKitLTI11Authenticator().get_uri_scheme(request) == "https"


async def test_convert_request_arguments_with_encoded_items_to_dict(hub: Hub) -> None:
    """Mirrors upstream ``test_convert_request_arguments_with_encoded_items_to_dict``: the launch's
    (byte-encoded) form fields arrive as plain strings, here in upstream's ``auth_state``."""
    args = launch_args(hub, key1="value1", key2="value2", key3="value3", **fresh())
    await accepted(hub, args, args["custom_canvas_user_id"])
    state = (await hub.api("GET", f"/users/{args['custom_canvas_user_id']}"))["auth_state"]
    expected = {"key1": "value1", "key2": "value2", "key3": "value3"}
    assert {k: state[k] for k in expected} == expected
