"""HubKit's LTI 1.3 authenticator on a real hub: OIDC login initiation and RS256 launches by the simulator."""

from __future__ import annotations

import html
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hubkit.auth import home_name
from hubkit_testing.hub import Hub
from hubkit_testing.lms_simulator import LTI, LMSSimulator, Person, parse_form

CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}


def person(role: str = "student", user_id: str | None = None) -> Person:
    return Person(user_id or f"p-{uuid.uuid4().hex[:10]}", "Test Person", role)


async def initiate(client: httpx.AsyncClient, lms: LMSSimulator, who: Person) -> dict[str, str]:
    """The LMS's cross-site login initiation POST (no _xsrf, as Moodle sends it); the auth request query."""
    r = await client.post("/hub/lti13/oauth_login", data=lms.login_initiation(who), headers=CROSS_SITE)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    assert location.startswith(lms.authorize_url + "?")
    return dict(parse_qsl(urlsplit(location).query))


async def through_lms(client: httpx.AsyncClient, lms: LMSSimulator, query: dict[str, str]) -> httpx.Response:
    """Follow the redirect to the LMS and submit the form it answers with, as the browser would."""
    async with httpx.AsyncClient() as browser_to_lms:
        page = await browser_to_lms.get(lms.authorize_url, params=query)
    assert page.status_code == 200, page.text
    action, fields = parse_form(page.text)
    return await client.post(action, data=fields, headers=CROSS_SITE)


async def test_launch_logs_in_with_identity_and_course_group(lti13_hub: Hub, lms: LMSSimulator) -> None:
    instructor = person("instructor")
    async with lti13_hub.client() as client:
        r = await through_lms(client, lms, await initiate(client, lms, instructor))
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/hub/home"
    model = await lti13_hub.api("GET", f"/users/{instructor.user_id}")
    assert model["groups"] == [f"course:{lms.course.context_id}:instructor"]
    key = f"lti:{lms.issuer}:{instructor.user_id}"
    assert model["auth_state"]["hubkit"]["key"] == key
    assert model["auth_state"]["hubkit"]["home"] == home_name(key)
    assert 3001000 <= model["auth_state"]["hubkit"]["uid"] <= 3001999
    assert model["auth_state"]["lti13"][LTI + "deployment_id"] == lms.config.deployment_id


async def test_a_launch_can_land_on_an_nbgitpuller_link(lti13_hub: Hub, lms: LMSSimulator) -> None:
    lms.config.custom = {"nbgitpuller_repo": "https://github.com/hubkit/course", "nbgitpuller_branch": "main"}
    try:
        async with lti13_hub.client() as client:
            r = await through_lms(client, lms, await initiate(client, lms, person()))
    finally:
        lms.config.custom = {}
    assert r.status_code == 302, r.text
    assert r.headers["location"] == (
        "/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fhubkit%2Fcourse&branch=main"
    )


def _forge(lms: LMSSimulator, who: Person, nonce: str, case: str) -> str:
    claims = lms.id_token_claims(who, nonce)
    now = int(time.time())
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if case == "wrong-issuer":
        claims["iss"] = "https://evil-lms.example"
    elif case == "wrong-audience":
        claims["aud"] = claims["azp"] = "someone-elses-client"
    elif case == "wrong-deployment":
        claims[LTI + "deployment_id"] = "deployment-not-allowed"
    elif case == "expired":
        claims["iat"], claims["exp"] = now - 900, now - 600
    elif case == "nonce-mismatch":
        claims["nonce"] = "another-login-attempt"
    elif case == "hostile-sub":
        claims["sub"] = "../../etc"
    elif case == "bad-signature":
        return lms.sign_id_token(claims, key=rogue)
    elif case == "unknown-kid":
        return lms.sign_id_token(claims, key=rogue, kid="rogue-key")
    return lms.sign_id_token(claims)


@pytest.mark.parametrize(
    ("case", "status", "sentence"),
    [
        ("wrong-issuer", 401, "issuer does not match"),
        ("wrong-audience", 401, "meant for another tool"),
        ("wrong-deployment", 401, "deployment this hub does not allow"),
        ("expired", 401, "has expired"),
        ("nonce-mismatch", 401, "nonce mismatch"),
        ("bad-signature", 401, "signature is not valid"),
        ("unknown-kid", 401, "key the LMS does not publish"),
        ("hostile-sub", 400, "contains '/'"),
    ],
)
async def test_bad_id_tokens_are_refused_and_create_nobody(
    lti13_hub: Hub, lms: LMSSimulator, case: str, status: int, sentence: str
) -> None:
    victim = person(user_id=f"victim-{case}-{uuid.uuid4().hex[:6]}")
    async with lti13_hub.client() as client:
        query = await initiate(client, lms, victim)
        token = _forge(lms, victim, query["nonce"], case)
        r = await client.post("/hub/lti13/oauth_callback", data={"id_token": token, "state": query["state"]})
    assert r.status_code == status, r.text
    assert sentence in html.unescape(r.text)
    await lti13_hub.api("GET", f"/users/{victim.user_id}", expect=404)
    assert f"LTI 1.3 launch rejected ({status}): " in lti13_hub.log_path.read_text()


async def test_unreachable_jwks_gives_a_clear_refusal(lti13_hub: Hub, broken_lms: LMSSimulator) -> None:
    victim = person()
    async with lti13_hub.client() as client:
        r = await through_lms(client, broken_lms, await initiate(client, broken_lms, victim))
    assert r.status_code == 401
    assert "could not fetch the LMS's signing keys" in html.unescape(r.text)
    await lti13_hub.api("GET", f"/users/{victim.user_id}", expect=404)
    assert f"iss={broken_lms.issuer!r}" in lti13_hub.log_path.read_text()


async def test_a_replayed_launch_and_a_foreign_browser_are_refused(lti13_hub: Hub, lms: LMSSimulator) -> None:
    who = person()
    async with lti13_hub.client() as client:
        query = await initiate(client, lms, who)
        async with httpx.AsyncClient() as to_lms:
            action, fields = parse_form((await to_lms.get(lms.authorize_url, params=query)).text)
        # Another browser (no state cookie) submitting the same launch is refused...
        async with lti13_hub.client() as other:
            r = await other.post(action, data=fields)
        assert r.status_code == 400
        assert "did not start this launch" in html.unescape(r.text)
        await lti13_hub.api("GET", f"/users/{who.user_id}", expect=404)
        # ...the right browser gets in once, and a replay is refused even with the state cookie put back
        # (the nonce is spent in the hub database).
        state_cookie = client.cookies.get("hubkit-lti13-state")
        assert state_cookie
        assert (await client.post(action, data=fields)).status_code == 302
        client.cookies.set("hubkit-lti13-state", state_cookie, domain="127.0.0.1", path="/hub/")
        r = await client.post(action, data=fields)
    assert r.status_code == 401
    assert "already used" in html.unescape(r.text)


@pytest.mark.parametrize(
    ("change", "status", "sentence"),
    [
        ({"iss": "https://unknown-lms.example"}, 401, "issuer) this hub does not know"),
        ({"client_id": "not-our-client"}, 401, "client id this hub is not registered under"),
        ({"lti_deployment_id": "other-deployment"}, 401, "deployment this hub does not allow"),
        ({"target_link_uri": "https://evil.example/"}, 400, "points to another site"),
        ({"login_hint": ""}, 400, "lacks iss, login_hint"),
    ],
)
async def test_bad_login_initiations_are_refused(
    lti13_hub: Hub, lms: LMSSimulator, change: dict[str, Any], status: int, sentence: str
) -> None:
    async with lti13_hub.client() as client:
        r = await client.post("/hub/lti13/oauth_login", data=lms.login_initiation(person()) | change)
    assert r.status_code == status, r.text
    assert sentence in html.unescape(r.text)
    assert "hubkit-lti13-state" not in r.cookies


async def test_an_oversized_id_token_is_refused_before_any_work(lti13_hub: Hub, lms: LMSSimulator) -> None:
    async with lti13_hub.client() as client:
        query = await initiate(client, lms, person())
        r = await client.post(
            "/hub/lti13/oauth_callback", data={"id_token": "x" * 20_000, "state": query["state"]}
        )
    assert r.status_code == 413
    assert "too large" in html.unescape(r.text)
    assert "LTI 1.3 launch rejected (413)" in lti13_hub.log_path.read_text()


async def test_the_platform_keys_are_fetched_once_and_reused(lti13_hub: Hub, lms: LMSSimulator) -> None:
    async with lti13_hub.client() as client:
        assert (await through_lms(client, lms, await initiate(client, lms, person()))).status_code == 302
    fetched = lms.jwks_requests
    assert fetched >= 1
    for _ in range(3):
        async with lti13_hub.client() as client:
            assert (await through_lms(client, lms, await initiate(client, lms, person()))).status_code == 302
    assert lms.jwks_requests == fetched
