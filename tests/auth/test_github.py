"""HubKit's GitHub authenticator against the fake GitHub: child teams, private membership, refresh."""

from __future__ import annotations

import asyncio
import html
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from conftest import hubkit_rows

from hubkit.auth import home_name
from hubkit_testing.fake_github import FakeGitHub
from hubkit_testing.hub import Hub


async def oauth_login(hub: Hub, gh: FakeGitHub, login: str, client: httpx.AsyncClient) -> httpx.Response:
    """The browser's round trip: hub → GitHub authorize (signed in as ``login``) → hub callback."""
    gh.sign_in(login)
    r = await client.get("/hub/oauth_login")
    assert r.status_code == 302, r.text
    async with httpx.AsyncClient() as to_github:
        approved = await to_github.get(r.headers["location"])
    assert approved.status_code == 302, approved.text
    callback = urlsplit(approved.headers["location"])
    return await client.get(f"{callback.path}?{callback.query}")


async def test_a_child_team_member_is_allowed_through_the_parent_team(
    github_hub: Hub, github: FakeGitHub
) -> None:
    async with github_hub.client() as c:
        r = await oauth_login(github_hub, github, "octo", c)
    assert r.status_code == 302, r.text
    model = await github_hub.api("GET", "/users/octo")
    assert sorted(model["groups"]) == [
        "github:hubkit-org",
        "github:hubkit-org:gpu",
        "github:hubkit-org:staff",
    ]
    block = model["auth_state"]["hubkit"]
    assert (block["key"], block["uid"], block["gid"]) == ("github:583231", 583231, 583231)
    assert block["home"] == home_name("github:583231")
    assert block["posix_groups"] == {
        "hubkit-org": 5000001,
        "hubkit-org-gpu": 6000002,
        "hubkit-org-staff": 6000001,
    }
    assert model["admin"] is False


async def test_team_admins_and_paginated_teams(github_hub: Hub, github: FakeGitHub) -> None:
    async with github_hub.client() as c:
        r = await oauth_login(github_hub, github, "tina", c)
    assert r.status_code == 302, r.text
    model = await github_hub.api("GET", "/users/tina")
    assert model["admin"] is True
    # 13 teams over pages of 5: every page was followed.
    assert {f"github:hubkit-org:proj-{i:02d}" for i in range(12)} <= set(model["groups"])


async def test_a_user_outside_the_org_is_refused(github_hub: Hub, github: FakeGitHub) -> None:
    async with github_hub.client() as c:
        r = await oauth_login(github_hub, github, "outsider", c)
    assert r.status_code == 403
    await github_hub.api("GET", "/users/outsider", expect=404)
    assert "GitHub user outsider is in none of" in github_hub.log_path.read_text()
    # Issue 21 bug 3: a refused login wrote a username binding and a uid; it must write nothing.
    assert hubkit_rows(github_hub, "583233") == []
    assert hubkit_rows(github_hub, "outsider") == []


async def test_without_read_org_an_invisible_membership_is_a_plain_refusal(
    github_hub_factory: Callable[[str], Hub], github: FakeGitHub, github_hub: Hub
) -> None:
    github.orgs["hubkit-org"].teams["staff"].members.add("priv")
    without_read_org = 'c.GitHubOAuthenticator.scope = ["read:user"]\n'
    hub = github_hub_factory(
        without_read_org + 'c.GitHubOAuthenticator.allowed_organizations = {"hubkit-org"}'
    )
    try:
        async with hub.client() as c:
            r = await oauth_login(hub, github, "priv", c)
        assert r.status_code == 403
        # Issue 21: without read:org a private member cannot be told from a non-member, so neither is
        # told "your membership is private"; the admin's log says how to admit private members.
        assert "read:org" not in html.unescape(r.text)
        async with hub.client() as c:
            outsider = await oauth_login(hub, github, "outsider", c)
        assert outsider.status_code == 403
        assert "read:org" not in html.unescape(outsider.text)
        await hub.api("GET", "/users/priv", expect=404)
        await hub.api("GET", "/users/outsider", expect=404)
        assert "lacks the read:org scope, so private memberships are invisible" in hub.log_path.read_text()
        # The same private member gets in on the hub that asks for read:org.
        async with github_hub.client() as c:
            assert (await oauth_login(github_hub, github, "priv", c)).status_code == 302
    finally:
        github.orgs["hubkit-org"].teams["staff"].members.discard("priv")


async def test_refresh_logs_out_a_member_removed_from_the_team(github_hub: Hub, github: FakeGitHub) -> None:
    github.users["rita"] = type(github.users["octo"])("rita", 583240, "Rita")
    github.orgs["hubkit-org"].members["rita"] = True
    github.orgs["hubkit-org"].teams["gpu"].members.add("rita")
    async with github_hub.client() as c:
        assert (await oauth_login(github_hub, github, "rita", c)).status_code == 302
        assert (await c.get("/hub/home")).status_code == 200
        github.orgs["hubkit-org"].teams["gpu"].members.discard("rita")
        await asyncio.sleep(1.5)
        r = await c.get("/hub/home")
    assert r.status_code == 302
    assert "/hub/login" in r.headers["location"]
    assert "GitHub user rita lost access at refresh" in github_hub.log_path.read_text()


async def test_an_exhausted_rate_limit_is_a_clear_error(github_hub: Hub, github: FakeGitHub) -> None:
    github.users["newbie"] = type(github.users["octo"])("newbie", 583250, "Newbie")
    github.orgs["hubkit-org"].teams["tas"].members.add("newbie")
    async with github_hub.client() as c:
        gh_ok = github.rate_limit_remaining
        github.rate_limit_remaining = 1  # /user succeeds, the membership calls hit the limit
        try:
            r = await oauth_login(github_hub, github, "newbie", c)
        finally:
            github.rate_limit_remaining = gh_ok
    assert r.status_code == 503
    assert "GitHub's API rate limit is used up" in html.unescape(r.text)
    await github_hub.api("GET", "/users/newbie", expect=404)
    assert "GitHub rate limit exhausted while checking newbie" in github_hub.log_path.read_text()


async def test_auth_state_groups_key_admits_and_makes_admins_as_upstream(
    github_hub_factory: Callable[[str], Hub], github: FakeGitHub
) -> None:
    """Issue 21 bug 4: upstream's documented teams-as-groups setup, with HubKit's org rules off."""
    hub = github_hub_factory(
        """
c.GitHubOAuthenticator.allowed_organizations = set()
c.HubKitGitHubAuthenticator.admin_organizations = []
c.GitHubOAuthenticator.populate_teams_in_auth_state = True
c.GitHubOAuthenticator.auth_state_groups_key = (
    lambda state: [f"{t['organization']['login']}:{t['slug']}" for t in state["teams"]]
)
c.GitHubOAuthenticator.allowed_groups = {"hubkit-org:tas"}
c.GitHubOAuthenticator.admin_groups = {"hubkit-org:gpu"}
"""
    )
    async with hub.client() as c:
        assert (await oauth_login(hub, github, "tina", c)).status_code == 302
    tina = await hub.api("GET", "/users/tina")
    assert tina["admin"] is False
    assert "hubkit-org:tas" in tina["groups"]
    assert "hubkit" in tina["auth_state"]  # HubKit's identity beside upstream's keys
    async with hub.client() as c:
        assert (await oauth_login(hub, github, "octo", c)).status_code == 302
    assert (await hub.api("GET", "/users/octo"))["admin"] is True
    async with hub.client() as c:
        assert (await oauth_login(hub, github, "outsider", c)).status_code == 403
