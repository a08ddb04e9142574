"""An honest GitHub (Enterprise-style URLs) on loopback: OAuth code flow and the REST API HubKit uses.

- ``/login/oauth/authorize`` signs in the user set with :meth:`FakeGitHub.sign_in` (there is no login UI)
  and redirects back with a one-time code; ``/login/oauth/access_token`` checks client secret, code,
  redirect URI and PKCE, and grants exactly the scopes that were requested.
- ``/api/v3``: ``/user``, ``/user/teams``, ``/user/memberships/orgs``, ``/orgs/{org}/members/{user}``,
  ``/orgs/{org}/teams/{slug}``, ``/orgs/{org}/teams/{slug}/members/{user}``. Private org membership and
  team data need ``read:org``, as on github.com; lists are paginated with ``Link`` headers; every answer
  carries ``X-RateLimit-*`` headers and an exhausted budget answers 403 "API rate limit exceeded".
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from .loopback_http import LoopbackHTTPServer


@dataclass
class GitHubUser:
    login: str
    id: int
    name: str = ""


@dataclass
class GitHubTeam:
    slug: str
    id: int
    members: set[str] = field(default_factory=set)
    parent: str | None = None


@dataclass
class GitHubOrg:
    login: str
    id: int
    members: dict[str, bool] = field(default_factory=dict)  # login -> membership is public
    teams: dict[str, GitHubTeam] = field(default_factory=dict)


@dataclass
class _Grant:
    login: str
    scopes: tuple[str, ...]
    redirect_uri: str = ""
    challenge: str = ""


class FakeGitHub:
    """Users, orgs and teams as data; mutate them between requests to simulate changes on GitHub."""

    def __init__(self, client_id: str = "hubkit-gh-client", client_secret: str = "hubkit-gh-secret") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.users: dict[str, GitHubUser] = {}
        self.orgs: dict[str, GitHubOrg] = {}
        self.max_per_page = 100
        self.rate_limit_remaining = 5000
        self.signed_in: str | None = None
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._http = LoopbackHTTPServer(_handler(self), "fake-github")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> FakeGitHub:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def sign_in(self, login: str) -> None:
        """The user whose browser session at GitHub approves the next authorization."""
        self.signed_in = login

    # --- OAuth ------------------------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if query.get("client_id") != self.client_id:
            return 404, {}, "Unknown OAuth application."
        if not self.signed_in or self.signed_in not in self.users:
            return 401, {}, "Nobody is signed in at GitHub."
        code = secrets.token_hex(10)
        scopes = tuple(s for s in query.get("scope", "").replace(",", " ").split() if s)
        self._codes[code] = _Grant(
            self.signed_in, scopes, query.get("redirect_uri", ""), query.get("code_challenge", "")
        )
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": target}, ""

    def access_token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 200, {"error": "incorrect_client_credentials"}
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or (grant.redirect_uri and form.get("redirect_uri") != grant.redirect_uri):
            return 200, {"error": "bad_verification_code"}
        if grant.challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
                return 200, {"error": "bad_verification_code", "error_description": "PKCE failed"}
        token = "gho_" + secrets.token_hex(16)
        self._tokens[token] = grant
        return 200, {"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)}

    # --- API --------------------------------------------------------------------------------------

    def api(self, path: str, query: dict[str, str], auth: str) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if self.rate_limit_remaining <= 0:
                headers = self._rate_headers()
                return 403, {"message": "API rate limit exceeded for user."}, headers
            self.rate_limit_remaining -= 1
        headers = self._rate_headers()
        grant = self._tokens.get(auth.split(" ", 1)[-1]) if auth else None
        if grant is None:
            return 401, {"message": "Requires authentication"}, headers
        headers["X-OAuth-Scopes"] = ", ".join(grant.scopes)
        status, body = self._route(path.split("/")[1:], grant)
        if isinstance(body, list):
            body, link = self._page(body, path, query)
            if link:
                headers["Link"] = link
        return status, body, headers

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(max(self.rate_limit_remaining, 0)),
            "X-RateLimit-Reset": str(int(time.time()) + 600),
        }

    def _page(self, items: list[Any], path: str, query: dict[str, str]) -> tuple[list[Any], str]:
        per_page = min(int(query.get("per_page", 30)), self.max_per_page)
        page = int(query.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = []
        if page < last:
            links.append(f'<{self.url}/api/v3{path}?{urlencode(query | {"page": page + 1})}>; rel="next"')
            links.append(f'<{self.url}/api/v3{path}?{urlencode(query | {"page": last})}>; rel="last"')
        return chunk, ", ".join(links)

    def _route(self, parts: list[str], grant: _Grant) -> tuple[int, Any]:
        me, read_org = self.users[grant.login], "read:org" in grant.scopes or "admin:org" in grant.scopes
        if parts == ["user"]:
            return 200, {"login": me.login, "id": me.id, "name": me.name, "email": None}
        if parts == ["user", "teams"]:
            if not read_org:
                return 403, {"message": "Resource not accessible: the token lacks read:org."}
            return 200, [
                self._team_json(o, t)
                for o in self.orgs.values()
                for t in o.teams.values()
                if me.login in t.members
            ]
        if parts == ["user", "memberships", "orgs"]:
            if not read_org:
                return 403, {"message": "Resource not accessible: the token lacks read:org."}
            return 200, [
                {"state": "active", "role": "member", "organization": {"login": o.login, "id": o.id}}
                for o in self.orgs.values()
                if me.login in o.members
            ]
        if len(parts) >= 2 and parts[0] == "orgs" and parts[1] in self.orgs:
            return self._org_route(self.orgs[parts[1]], parts[2:], me, read_org)
        return 404, {"message": "Not Found"}

    def _org_route(self, org: GitHubOrg, rest: list[str], me: GitHubUser, read_org: bool) -> tuple[int, Any]:
        insider = me.login in org.members and read_org
        if rest == []:
            return 200, {"login": org.login, "id": org.id}
        if len(rest) == 2 and rest[0] == "members":
            public = org.members.get(rest[1])
            visible = public is True or (public is not None and insider)
            return (204, None) if visible else (404, {"message": "Not Found"})
        if len(rest) >= 2 and rest[0] == "teams" and rest[1] in org.teams and insider:
            team = org.teams[rest[1]]
            if len(rest) == 2:
                return 200, self._team_json(org, team)
            if len(rest) == 4 and rest[2] == "members":
                return (204, None) if rest[3] in team.members else (404, {"message": "Not Found"})
        return 404, {"message": "Not Found"}

    @staticmethod
    def _team_json(org: GitHubOrg, team: GitHubTeam) -> dict[str, Any]:
        parent = org.teams.get(team.parent) if team.parent else None
        return {
            "slug": team.slug,
            "id": team.id,
            "name": team.slug,
            "organization": {"login": org.login, "id": org.id},
            "parent": {"slug": parent.slug, "id": parent.id} if parent else None,
        }


def _handler(gh: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query))
            if parts.path == "/login/oauth/authorize":
                status, headers, text = gh.authorize(query)
                self._send(status, text.encode() if text else None, headers)
            elif parts.path.startswith("/api/v3/"):
                status, body, headers = gh.api(
                    parts.path[len("/api/v3") :], query, self.headers.get("Authorization", "")
                )
                self._send(status, body, headers)
            else:
                self._send(404, {"message": "Not Found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            form = dict(parse_qsl(urlsplit(self.path).query)) | dict(parse_qsl(raw))
            if raw.startswith("{"):
                form |= json.loads(raw)
            if urlsplit(self.path).path == "/login/oauth/access_token":
                self._send(*gh.access_token(form))
            else:
                self._send(404, {"message": "Not Found"})

    return Handler
