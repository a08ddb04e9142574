"""HubKit's CILogon authenticator against the fake OIDC provider: verified id_token, claim groups."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import hubkit_rows, make_cilogon_hub
from cryptography.hazmat.primitives.asymmetric import rsa

from hubkit.auth import home_name
from hubkit.auth.identity import posix_group_name
from hubkit_testing.fake_oidc import FakeOIDC, OIDCPerson
from hubkit_testing.hub import Hub

UNIVERSITY_IDP = "https://idp.hubkit-university.test"  # as configured by the cilogon_hub fixture


def person(
    local: str, idp: str = UNIVERSITY_IDP, groups: list[str] | None = None, domain: str = ""
) -> OIDCPerson:
    sub = f"http://cilogon.org/serverA/users/{uuid.uuid4().int % 10**8}"
    return OIDCPerson(sub, idp, f"{local}@{domain or 'hubkit-university.test'}", groups or [])


async def sign_in(hub: Hub, op: FakeOIDC, who: OIDCPerson) -> httpx.Response:
    op.people[who.sub] = who
    op.sign_in(who.sub)
    async with hub.client() as client:
        r = await client.get("/hub/oauth_login")
        assert r.status_code == 302, r.text
        assert "selected_idp=" in r.headers["location"]
        async with httpx.AsyncClient() as to_op:
            approved = await to_op.get(r.headers["location"])
        assert approved.status_code == 302, approved.text
        back = urlsplit(approved.headers["location"])
        return await client.get(f"{back.path}?{back.query}")


@pytest.fixture
def overrides(oidc: FakeOIDC) -> Iterator[FakeOIDC]:
    try:
        yield oidc
    finally:
        oidc.id_token_overrides = {}
        oidc.signing_key = None


async def test_a_university_member_gets_identity_groups_and_admin(cilogon_hub: Hub, oidc: FakeOIDC) -> None:
    ada = person("ada", groups=["physics", "hubkit-admins"])
    r = await sign_in(cilogon_hub, oidc, ada)
    assert r.status_code == 302, r.text
    model = await cilogon_hub.api("GET", "/users/ada")
    assert sorted(model["groups"]) == ["cilogon:hubkit-admins", "cilogon:physics"]
    assert model["admin"] is True
    block = model["auth_state"]["hubkit"]
    assert block["key"] == f"cilogon:{ada.sub}"
    assert block["home"] == home_name(block["key"])
    assert 3003000 <= block["uid"] <= 3003999
    # Each claim group gets its own gid from the same range, so group permissions work in the pod.
    groups = block["posix_groups"]
    assert set(groups) == {posix_group_name("cilogon:physics"), posix_group_name("cilogon:hubkit-admins")}
    assert all(3003000 <= gid <= 3003999 and gid != block["uid"] for gid in groups.values())
    assert len(set(groups.values())) == 2


async def test_per_idp_username_derivation_and_domains(cilogon_hub: Hub, oidc: FakeOIDC) -> None:
    gh_idp = "http://github.com/login/oauth/authorize"
    gus = person("gus", gh_idp, domain="example.org")
    assert (await sign_in(cilogon_hub, oidc, gus)).status_code == 302
    await cilogon_hub.api("GET", "/users/gh:gus@example.org")
    eve = person("eve", gh_idp, domain="elsewhere.net")
    r = await sign_in(cilogon_hub, oidc, eve)
    assert r.status_code == 403
    await cilogon_hub.api("GET", "/users/gh:eve@elsewhere.net", expect=404)
    # Issue 21 bug 3: the refusal wrote a username binding and a uid before; it must write nothing.
    assert hubkit_rows(cilogon_hub, eve.sub) == []
    assert hubkit_rows(cilogon_hub, "eve@elsewhere.net") == []


@pytest.mark.parametrize(
    ("case", "status", "sentence"),
    [
        ("unknown-idp", 403, "is not pre-configured"),
        ("forged", 403, "could not be verified (InvalidSignatureError)"),
        ("wrong-audience", 403, "could not be verified (InvalidAudienceError)"),
        ("expired", 403, "could not be verified (ExpiredSignatureError)"),
        ("subject-swap", 403, "subject mismatch"),
        ("dotdot-name", 400, "contains '/', '\\' or '..'"),
        ("long-name", 400, "1 to 128 characters"),
    ],
)
async def test_bad_sign_ins_are_refused_and_create_nobody(
    cilogon_hub: Hub, overrides: FakeOIDC, case: str, status: int, sentence: str
) -> None:
    local = {"dotdot-name": "..evil", "long-name": "x" * 300}.get(case, f"victim-{case}")
    who = person(local, idp="https://unknown-idp.example" if case == "unknown-idp" else UNIVERSITY_IDP)
    if case == "forged":
        overrides.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif case == "wrong-audience":
        overrides.id_token_overrides = {"aud": "another-client"}
    elif case == "expired":
        overrides.id_token_overrides = {"iat": 1_700_000_000, "exp": 1_700_000_600}
    elif case == "subject-swap":
        overrides.id_token_overrides = {"sub": "http://cilogon.org/serverA/users/someone-else"}
    before = {u["name"] for u in await cilogon_hub.api("GET", "/users")}
    r = await sign_in(cilogon_hub, overrides, who)
    assert r.status_code == status, r.text
    assert sentence in html.unescape(r.text)
    assert {u["name"] for u in await cilogon_hub.api("GET", "/users")} == before
    log = cilogon_hub.log_path.read_text()
    assert (
        "is not pre-configured" in log if case == "unknown-idp" else f"CILogon login of '{local[:20]}" in log
    )


async def test_auth_state_groups_key_admits_and_makes_admins_as_upstream(
    tmp_path: Path, oidc: FakeOIDC
) -> None:
    """Issue 21 bug 4: upstream's groups-from-auth_state setup (unprefixed ``isMemberOf`` values) admits
    members of ``allowed_groups`` and makes ``admin_groups`` admins; HubKit's ``cilogon:`` groups stay."""
    derive = {"username_claim": "email", "action": "strip_idp_domain", "domain": "hubkit-university.test"}
    extra = f"""
c.CILogonOAuthenticator.idps = {{{UNIVERSITY_IDP!r}: {{"username_derivation": {derive!r}}}}}
c.CILogonOAuthenticator.auth_state_groups_key = "cilogon_user.isMemberOf"
c.CILogonOAuthenticator.allowed_groups = {{"physics"}}
c.CILogonOAuthenticator.admin_groups = {{"physics-staff"}}
"""
    hub = make_cilogon_hub(tmp_path / "hub", oidc, extra)
    try:
        assert (await sign_in(hub, oidc, person("pia", groups=["physics"]))).status_code == 302
        pia = await hub.api("GET", "/users/pia")
        assert pia["admin"] is False
        assert {"physics", "cilogon:physics"} <= set(pia["groups"])
        assert (await sign_in(hub, oidc, person("sam", groups=["physics-staff"]))).status_code == 302
        assert (await hub.api("GET", "/users/sam"))["admin"] is True
        outsider = person("otto", groups=["chemistry"])
        r = await sign_in(hub, oidc, outsider)
        assert r.status_code == 403, r.text
        await hub.api("GET", "/users/otto", expect=404)
        assert hubkit_rows(hub, outsider.sub) == []
    finally:
        hub.stop()
