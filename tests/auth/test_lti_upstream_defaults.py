"""ltiauthenticator's defaults and auth_state layout on HubKit's LTI authenticators (issue 21, bug 5)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
from conftest import CRYPT_ENV, hubkit_rows, lti11_config, lti13_platform
from test_lti13 import CROSS_SITE, initiate, through_lms

from hubkit_testing.hub import Hub
from hubkit_testing.lms_simulator import LTI, LMSSimulator, Person


def person(role: str = "student") -> Person:
    return Person(f"u-{uuid.uuid4().hex[:10]}", "Test Person", role)


async def test_lti11_names_users_by_custom_canvas_user_id_and_keeps_upstreams_auth_state(
    lti11_hub: Hub, lms: LMSSimulator
) -> None:
    student = person()
    canvas_id = f"canvas-{uuid.uuid4().hex[:8]}"
    async with lti11_hub.client() as c:
        r = await c.post(
            "/hub/lti/launch", data=lms.lti11_params(student, custom={"canvas_user_id": canvas_id})
        )
    assert r.status_code == 302, r.text
    state = (await lti11_hub.api("GET", f"/users/{canvas_id}"))["auth_state"]
    assert state["user_id"] == student.user_id  # upstream: the launch parameters, flat
    assert state["context_id"] == lms.course.context_id
    assert not any(k.startswith("oauth_") for k in state)
    assert state["lti11"]["user_id"] == student.user_id  # HubKit's keys beside them
    assert state["hubkit"]["key"] == f"lti:hubkit-test:{student.user_id}"


async def test_lti13_names_users_by_email_and_refuses_unverified_claims(
    hub_factory: Callable[..., Hub], lms: LMSSimulator
) -> None:
    config = f"""
c.JupyterHub.authenticator_class = "hubkit-lti13"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.HubKitLTI13Authenticator.platforms = {{{lms.issuer!r}: {lti13_platform(lms)!r}}}
c.HubKitLTI13Authenticator.id_range = (3004000, 3004999)
"""
    hub = hub_factory(config=config, env=CRYPT_ENV)
    lms.config.hub_url = hub.url
    who = person()
    async with hub.client() as client:
        r = await through_lms(client, lms, await initiate(client, lms, who))
    assert r.status_code == 302, r.text
    state = (await hub.api("GET", f"/users/{who.email}"))["auth_state"]
    assert state["sub"] == who.user_id  # upstream: the decoded id_token's claims, flat
    assert state[LTI + "deployment_id"] == lms.config.deployment_id
    assert state["lti13"]["sub"] == who.user_id
    assert state["hubkit"]["key"] == f"lti:{lms.issuer}:{who.user_id}"
    # authenticate() takes decoded claims as upstream does, but only those verified on this request:
    # claims posted to the hub's login form are refused and create nobody.
    forged = {"iss": lms.issuer, "sub": "forged-user", "nonce": "n", "email": "forged@lms.hubkit.test"}
    async with hub.client() as c:
        await c.get("/hub/login")
        r = await c.post(
            "/hub/login", data={**forged, "_xsrf": c.cookies.get("_xsrf") or ""}, headers=CROSS_SITE
        )
    assert r.status_code in (401, 403), r.text
    await hub.api("GET", "/users/forged@lms.hubkit.test", expect=404)
    assert hubkit_rows(hub, "forged") == []


async def test_a_launch_refused_by_allowed_users_writes_nothing(
    hub_factory: Callable[..., Hub], lms: LMSSimulator
) -> None:
    hub = hub_factory(
        config=lti11_config(
            'c.Authenticator.allow_all = False\nc.Authenticator.allowed_users = {"someone-else"}\n'
        ),
        env=CRYPT_ENV,
    )
    lms.config.hub_url = hub.url
    student = person()
    async with hub.client() as c:
        r: httpx.Response = await c.post("/hub/lti/launch", data=lms.lti11_params(student))
    assert r.status_code == 403
    await hub.api("GET", f"/users/{student.user_id}", expect=404)
    assert hubkit_rows(hub, student.user_id) == []
