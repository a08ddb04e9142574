"""The LMS simulator's LTI Advantage services, played as a platform plays them.

- ``POST /lti13/token``: OAuth2 client credentials. The client assertion (RFC 7523) is verified with the
  tool's public key fetched from the tool's JWKS URL (``LMSConfig.tool_jwks_url``): RS256 signature,
  ``iss``/``sub`` = the tool's client id, ``aud`` = this endpoint, not expired, ``jti`` never seen.
  Only the LTI Advantage scopes this platform grants are issued.
- ``GET /nrps/<context>/memberships``: NRPS 2.0 membership container, ``page_size`` members per page,
  ``Link: <...>; rel="next"`` to the next page; needs a bearer token with the NRPS scope.

Tests edit ``roster`` (members per context) and can make one request fail (``fail_next``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jwt

if TYPE_CHECKING:
    from .lms_simulator import LMSSimulator

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
GRANTED_SCOPES = {NRPS_SCOPE}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@dataclass
class Answer:
    status: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def member(user_id: str, role: str, status: str = "Active") -> dict[str, Any]:
    """One NRPS member entry (role: student | instructor | ta)."""
    from .lms_simulator import ROLES_13

    return {
        "user_id": user_id,
        "roles": [ROLES_13.get(role, role)],
        "status": status,
        "name": f"User {user_id}",
        "email": f"{user_id}@lms.hubkit.test",
    }


class AdvantageServices:
    def __init__(self, lms: LMSSimulator) -> None:
        self.lms = lms
        self.roster: dict[str, list[dict[str, Any]]] = {}
        self.page_size = 2
        self.fail_next: dict[str, int] = {}  # "token" or "nrps-page-<n>" -> status of the next such answer
        self.tokens: dict[str, tuple[frozenset[str], float]] = {}
        self.seen_jti: set[str] = set()
        self.refusals: list[str] = []
        self._lock = threading.Lock()

    def memberships_url(self, context_id: str) -> str:
        return f"{self.lms.backend_url}/nrps/{quote(context_id, safe='')}/memberships"

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Answer:
        parts = [p for p in path.split("/") if p]
        if method == "POST" and path == "/lti13/token":
            return self._failing("token") or self.token(query)
        if method == "GET" and len(parts) == 3 and parts[0] == "nrps" and parts[2] == "memberships":
            return self.memberships(parts[1], int(query.get("page", "1")), headers)
        return Answer(404, {"error": "not_found"})

    def _failing(self, what: str) -> Answer | None:
        with self._lock:
            status = self.fail_next.pop(what, None)
        return None if status is None else Answer(status, {"error": "temporarily_unavailable"})

    def _refuse(self, status: int, error: str, why: str) -> Answer:
        self.refusals.append(why)
        return Answer(status, {"error": error, "error_description": why})

    # --- token endpoint ---------------------------------------------------------------------------

    def token(self, form: dict[str, str]) -> Answer:
        if form.get("grant_type") != "client_credentials":
            return self._refuse(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return self._refuse(400, "invalid_client", "client_assertion_type must be jwt-bearer")
        try:
            self._verify_assertion(form.get("client_assertion", ""))
        except (jwt.PyJWTError, OSError, ValueError, KeyError) as e:
            return self._refuse(401, "invalid_client", f"client assertion refused: {e}")
        scopes = frozenset(form.get("scope", "").split())
        if not scopes or not scopes <= GRANTED_SCOPES:
            return self._refuse(
                400, "invalid_scope", f"scopes not granted: {sorted(scopes - GRANTED_SCOPES)}"
            )
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (scopes, time.time() + 3600)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(scopes)}
        return Answer(200, body)

    def _verify_assertion(self, assertion: str) -> dict[str, Any]:
        if not self.lms.config.tool_jwks_url:
            raise ValueError("this platform has no JWKS URL registered for the tool")
        kid = jwt.get_unverified_header(assertion).get("kid")
        with urllib.request.urlopen(self.lms.config.tool_jwks_url, timeout=5) as r:
            keys = jwt.PyJWKSet.from_dict(json.loads(r.read()))
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise ValueError(f"no tool key with kid {kid!r}")
        client_id = self.lms.config.client_id
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key.key,
            algorithms=["RS256"],
            audience=self.lms.token_url,
            issuer=client_id,
            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
        )
        if claims["sub"] != client_id:
            raise ValueError("sub is not the tool's client id")
        with self._lock:
            if claims["jti"] in self.seen_jti:
                raise ValueError("jti already used (a replayed assertion)")
            self.seen_jti.add(claims["jti"])
        return claims

    # --- NRPS -------------------------------------------------------------------------------------

    def memberships(self, context_id: str, page: int, headers: dict[str, str]) -> Answer:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scopes, expires = self.tokens.get(auth.removeprefix("Bearer "), (frozenset(), 0.0))
        if NRPS_SCOPE not in scopes or expires < time.time():
            return self._refuse(401, "invalid_token", "no valid bearer token with the NRPS scope")
        failing = self._failing(f"nrps-page-{page}")
        if failing:
            return failing
        members = self.roster.get(context_id, [])
        start = (page - 1) * self.page_size
        url = self.memberships_url(context_id)
        body = {
            "id": url,
            "context": {"id": context_id, "title": self.lms.course.title},
            "members": members[start : start + self.page_size],
        }
        links = {}
        if start + self.page_size < len(members):
            links["Link"] = f'<{url}?page={page + 1}>; rel="next"'
        return Answer(200, body, MEMBERSHIPS, links)
