"""``HubKitGitHubAuthenticator``: org/team access incl. child teams, plain scope errors, live refresh."""

from __future__ import annotations

import json
from typing import Any

from oauthenticator.github import GitHubOAuthenticator  # type: ignore[import-untyped]
from oauthenticator.oauth2 import OAuthenticator  # type: ignore[import-untyped]
from tornado.httputil import url_concat
from tornado.web import HTTPError
from traitlets import List, Unicode

from .accounts import PENDING_KEY, IdentityAuthenticatorMixin
from .exceptions import HubKitAuthError
from .github_memberships import Memberships, matches, parse_link_next
from .identity import MAX_ID, MIN_ID, posix_group_name

MAX_PAGES = 50


class GitHubRateLimited(Exception):
    """GitHub answered 403/429 with an exhausted rate limit."""


class HubKitGitHubAuthenticator(IdentityAuthenticatorMixin, GitHubOAuthenticator):  # type: ignore[misc]
    """GitHub OAuth with ``org`` / ``org:team`` access (members of child teams count), groups, identity."""

    hubkit_provider = "github"

    admin_organizations = List(
        Unicode(),
        config=True,
        help="""``org`` or ``org:team`` entries whose members are hub admins (members of child teams of a
        listed team included). Needs the ``read:org`` scope for private memberships and for teams.""",
    )

    # --- GitHub API -----------------------------------------------------------------------------

    async def _get(self, url: str, token: dict[str, Any]) -> tuple[int, Any, str]:
        headers = self.build_userdata_request_headers(
            token["access_token"], token.get("token_type", "bearer")
        )
        resp = await self.httpfetch(
            url,
            "fetching GitHub memberships",
            parse_json=False,
            raise_error=False,
            method="GET",
            headers=headers,
            validate_cert=self.validate_server_cert,
        )
        if resp.code in (403, 429) and resp.headers.get("X-RateLimit-Remaining") == "0":
            raise GitHubRateLimited(resp.headers.get("X-RateLimit-Reset", ""))
        body = json.loads(resp.body.decode()) if resp.body else None
        return resp.code, body, resp.headers.get("Link", "")

    async def _get_all(self, url: str, token: dict[str, Any]) -> list[Any] | None:
        """Every item of a paginated list (following ``Link: rel="next"``), or None if forbidden."""
        items: list[Any] = []
        next_url: str | None = url_concat(url, {"per_page": "100"})
        for _ in range(MAX_PAGES):
            if next_url is None:
                return items
            status, body, link = await self._get(next_url, token)
            if status != 200 or not isinstance(body, list):
                return None
            items += body
            next_url = parse_link_next(link)
        return items

    async def memberships(self, token: dict[str, Any], scopes: list[str]) -> Memberships:
        """Orgs and teams of the token's user; teams include every ancestor of the user's teams."""
        found = Memberships(read_org="read:org" in scopes or "admin:org" in scopes)
        orgs = await self._get_all(f"{self.github_api}/user/memberships/orgs", token) or []
        for m in orgs:
            if m.get("state") == "active":
                found.orgs[m["organization"]["login"].lower()] = int(m["organization"]["id"])
        for team in await self._get_all(f"{self.github_api}/user/teams", token) or []:
            org = team["organization"]["login"].lower()
            found.orgs.setdefault(org, int(team["organization"]["id"]))
            await self._add_team_chain(found, org, team, token)
        return found

    async def _add_team_chain(
        self, found: Memberships, org: str, team: dict[str, Any], token: dict[str, Any]
    ) -> None:
        for _ in range(10):  # GitHub nests teams at most a few levels deep
            found.teams[f"{org}:{team['slug'].lower()}"] = int(team["id"])
            parent = team.get("parent")
            if not parent or f"{org}:{parent['slug'].lower()}" in found.teams:
                return
            status, body, _ = await self._get(f"{self.github_api}/orgs/{org}/teams/{parent['slug']}", token)
            if status != 200 or not isinstance(body, dict):
                found.teams[f"{org}:{parent['slug'].lower()}"] = int(parent["id"])
                return
            team = body

    async def _public_member(self, org: str, login: str, token: dict[str, Any]) -> bool:
        status, _, _ = await self._get(f"{self.github_api}/orgs/{org}/members/{login}", token)
        return status == 204

    # --- hooks ----------------------------------------------------------------------------------

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_model = await super().update_auth_model(auth_model)
        state = auth_model["auth_state"]
        user, token = state["github_user"], state["token_response"]
        # GitHub answers scopes comma-separated ("read:user,read:org"); upstream splits on spaces only.
        scopes = [s for entry in state.get("scope") or [] for s in entry.replace(",", " ").split()]
        try:
            found = await self.memberships(token, scopes)
            if not found.read_org:
                for entry in self.allowed_organizations | set(self.admin_organizations):
                    org = entry.split(":", 1)[0].lower()
                    if org not in found.orgs and await self._public_member(org, user["login"], token):
                        found.orgs[org] = 0
        except GitHubRateLimited as e:
            self.log.error("GitHub rate limit exhausted while checking %s (reset at %s)", user["login"], e)
            raise HTTPError(503, "GitHub's API rate limit is used up; try again in a few minutes.") from e
        state["github_memberships"] = found.to_json()
        admin = any(matches(found, entry) for entry in self.admin_organizations)
        if admin:
            auth_model["admin"] = True
        posix = {
            posix_group_name(name): number
            for name, number in [
                *found.orgs.items(),
                *((k.replace(":", "-"), v) for k, v in found.teams.items()),
            ]
            if MIN_ID <= number < MAX_ID
        }
        uid = int(user["id"])
        numbers = (uid, uid) if MIN_ID <= uid < MAX_ID else None
        try:
            auth_model[PENDING_KEY] = self.hubkit_pending(f"github:{uid}", auth_model["name"], numbers, posix)
        except HubKitAuthError as e:
            self.log.warning("GitHub login of %r refused: %s", user["login"], e)
            raise HTTPError(403, str(e)) from e
        auth_model["groups"] = sorted(
            [f"github:{o}" for o in found.orgs] + [f"github:{t}" for t in found.teams]
        )
        return auth_model

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """HubKit's ``github:<org>[:<team>]`` groups, plus upstream's from ``auth_state_groups_key``."""
        found = Memberships.from_json(auth_state.get("github_memberships") or {})
        groups = {f"github:{o}" for o in found.orgs} | {f"github:{t}" for t in found.teams}
        if self.auth_state_groups_key:
            groups |= set(await super().get_user_groups(auth_state))
        return groups

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        if auth_model is None:
            return True
        # Upstream's rules first (allowed_users, admins, allowed_groups, allowed_scopes, allow_all); the
        # organization rules below replace GitHubOAuthenticator's, which cannot see child teams.
        if await OAuthenticator.check_allowed(self, username, auth_model):
            return True
        if not self.allowed_organizations:
            return False
        found = Memberships.from_json(auth_model["auth_state"].get("github_memberships") or {})
        if any(matches(found, entry) for entry in self.allowed_organizations):
            return True
        if not found.read_org:
            # Not a refusal message for the user: a non-member must simply not be admitted.
            self.log.warning(
                "GitHub user %s: no public membership in %s and the hub lacks the read:org scope, so "
                "private memberships are invisible; add read:org to the scope to admit them.",
                username,
                sorted(self.allowed_organizations),
            )
            return False
        self.log.warning("GitHub user %s is in none of %s.", username, sorted(self.allowed_organizations))
        return False

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        model = await super().refresh_user(user, handler, **kwargs)
        if not isinstance(model, dict):
            return model
        if self.allow_all:
            return await self.hubkit_admit(model)
        try:
            allowed = await self.check_allowed(user.name, model)
        except HTTPError:
            allowed = False
        if not allowed:
            self.log.warning("GitHub user %s lost access at refresh; logging them out.", user.name)
            return False
        return await self.hubkit_admit(model)
