"""HubKitMultiAuthenticator on a real hub: LTI 1.1 students and a local staff login side by side."""

from __future__ import annotations

import asyncio
import html
import uuid
from collections.abc import Callable

import httpx
import ldap3
import pytest
from traitlets.config import Config

from hubkit.auth import HubKitMultiAuthenticator
from hubkit_testing.hub import Hub
from hubkit_testing.ldap import SlapdServer
from hubkit_testing.lms_simulator import LMSSimulator, Person


async def local_login(hub: Hub, username: str, password: str = "hubkit") -> httpx.Response:
    async with hub.client() as c:
        page = await c.get("/hub/local/login")
        assert page.status_code == 200
        xsrf = c.cookies.get("_xsrf") or ""
        return await c.post(
            "/hub/local/login", data={"username": username, "password": password, "_xsrf": xsrf}
        )


async def test_one_login_page_lists_every_service(multi_hub: Hub) -> None:
    async with multi_hub.client() as c:
        page = await c.get("/hub/login")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Your course (LTI 1.1): open this hub from your course in the LMS." in text
    assert 'action="/hub/local/login"' in text
    assert "Sign in (Staff)" in text


async def test_students_and_staff_land_in_separate_namespaces(multi_hub: Hub, lms: LMSSimulator) -> None:
    student = Person(f"s-{uuid.uuid4().hex[:8]}", "Student")
    r = await launch(multi_hub, lms, student)
    assert r.status_code == 302, r.text
    # iframe_cookies: the login cookies survive inside an LMS iframe (third-party context).
    cookies = [v for k, v in r.headers.multi_items() if k.lower() == "set-cookie"]
    session = [c for c in cookies if c.startswith("jupyterhub-session-id=")]
    assert session
    assert [c for c in cookies if "SameSite=None" not in c or "Secure" not in c] == []
    model = await multi_hub.api("GET", f"/users/lti:{student.user_id}")
    assert model["groups"] == [f"course:{lms.course.context_id}:student"]
    assert model["auth_state"]["hubkit"]["key"] == f"lti:{lms.config.consumer_key}:{student.user_id}"
    assert 3002000 <= model["auth_state"]["hubkit"]["uid"] <= 3002999
    await multi_hub.api("GET", f"/users/{student.user_id}", expect=404)

    r = await local_login(multi_hub, "admin")
    assert r.status_code == 302, r.text
    admin = await multi_hub.api("GET", "/users/admin")
    assert admin["admin"] is True


async def test_a_local_name_inside_the_lti_namespace_is_refused(multi_hub: Hub) -> None:
    r = await local_login(multi_hub, "lti:someone")
    assert r.status_code in (200, 403)
    assert "jupyterhub-session-id" not in r.cookies
    await multi_hub.api("GET", "/users/lti:someone", expect=404)
    assert "belongs to another login service's namespace" in multi_hub.log_path.read_text()


async def test_local_users_outside_its_allow_list_are_refused(multi_hub: Hub) -> None:
    r = await local_login(multi_hub, "mallory")
    assert "jupyterhub-session-id" not in r.cookies
    await multi_hub.api("GET", "/users/mallory", expect=404)


async def launch(hub: Hub, lms: LMSSimulator, who: Person) -> httpx.Response:
    async with hub.client() as c:
        return await c.post("/hub/lti/launch", data=lms.lti11_params(who))


def _multi(entries: list[dict[str, object]]) -> HubKitMultiAuthenticator:
    config = Config()
    config.HubKitMultiAuthenticator.authenticators = entries
    return HubKitMultiAuthenticator(config=config)


def test_users_are_routed_to_the_authenticator_that_owns_their_namespace() -> None:
    multi = _multi(
        [
            {"authenticator_class": "hubkit-lti11", "url_prefix": "lms"},
            {"authenticator_class": "hubkit-lti13", "url_prefix": "lms13"},
            {"authenticator_class": "dummy", "url_prefix": "local", "username_prefix": ""},
        ]
    )
    lti11, lti13, local = multi.subs
    assert multi.owner_of("lms:alice") is lti11
    assert multi.owner_of("lms13:alice") is lti13
    assert multi.owner_of("alice") is local
    assert lti11.login_url("/hub/") == "/hub/lms/lti/launch"
    assert lti13.login_url("/hub/") == "/hub/lms13/lti13/oauth_login"
    routes = [path for path, _ in multi.get_handlers(None)]
    assert {"/login", "/lms/lti/launch", "/lms13/lti13/oauth_login", "/local/login"} <= set(routes)
    assert multi.manage_groups is True


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "is empty"),
        ([{"url_prefix": "x"}], "lacks 'authenticator_class'"),
        ([{"authenticator_class": "dummy", "bogus": 1}], "unknown keys"),
        (
            [
                {"authenticator_class": "dummy", "url_prefix": "a"},
                {"authenticator_class": "dummy", "url_prefix": "a"},
            ],
            "overlap",
        ),
        (
            [
                {"authenticator_class": "dummy", "url_prefix": "a", "username_prefix": ""},
                {"authenticator_class": "dummy", "url_prefix": "b", "username_prefix": ""},
            ],
            "At most one",
        ),
        ([{"authenticator_class": "dummy", "url_prefix": "../x"}], "invalid url_prefix"),
    ],
)
def test_bad_compositions_are_refused_at_startup(entries: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _multi(entries)


async def test_refresh_is_forwarded_to_the_owning_authenticator(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer
) -> None:
    """LDAP staff under /hub/ldap/ with names ``ldap:<uid>``: the LDAP part rechecks them at refresh."""
    d = ldap_server.directory
    group = d.group_dn(f"multi-{uuid.uuid4().hex[:6]}")
    admin = ldap3.Connection(
        ldap_server.url, ldap_server.admin_dn, ldap_server.admin_password, auto_bind=True
    )
    admin.add(group, ["groupOfNames"], {"member": [d.user_dn("dave")]})
    compose = f"""
c.LDAPAuthenticator.allowed_groups = [{group!r}]
c.Authenticator.auth_refresh_age = 1
c.JupyterHub.authenticator_class = "hubkit-multi"
c.HubKitMultiAuthenticator.authenticators = [
    {{"authenticator_class": "hubkit-ldap", "url_prefix": "ldap", "label": "Staff directory"}},
    {{"authenticator_class": "dummy", "url_prefix": "local", "username_prefix": "",
      "config": {{"password": "hubkit", "allowed_users": {{"admin"}}}}}},
]
"""
    try:
        hub = ldap_hub_factory([ldap_server.url], compose)
        async with hub.client() as c:
            await c.get("/hub/ldap/login")
            data = {"username": "dave", "password": d.user("dave").password, "_xsrf": c.cookies["_xsrf"]}
            assert (await c.post("/hub/ldap/login", data=data)).status_code == 302
            model = await hub.api("GET", "/users/ldap:dave")
            assert model["auth_state"]["hubkit"]["uid"] == d.user("dave").uid_number
            assert (await c.get("/hub/home")).status_code == 200
            admin.modify(group, {"member": [(ldap3.MODIFY_REPLACE, [d.user_dn("carol")])]})
            await asyncio.sleep(1.5)
            r = await c.get("/hub/home")
        assert r.status_code == 302
        assert "/hub/login" in r.headers["location"]
        assert "LDAP user 'ldap:dave' lost access at refresh" in hub.log_path.read_text()
    finally:
        admin.delete(group)
        admin.unbind()
