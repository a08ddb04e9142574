"""The LMS simulator's LTI Advantage services, played as a platform plays them.

- ``POST /lti13/token``: OAuth2 client credentials. The client assertion (RFC 7523) is verified with the
  tool's public key fetched from the tool's JWKS URL (``LMSConfig.tool_jwks_url``): RS256 signature,
  ``iss``/``sub`` = the tool's client id, ``aud`` = this endpoint, not expired, ``jti`` never seen.
  Only the LTI Advantage scopes this platform grants are issued.
- ``GET|POST /ags/<context>/lineitems`` and ``POST /ags/<context>/lineitems/<id>/scores``: AGS 2.0 line
  items (found by ``resource_link_id``, created on POST) and scores, recorded in ``scores`` after checking
  the token's scope, the score's range and that the user is on the course's roster.
- ``POST /lti13/deep_link_return``: the tool's ``LtiDeepLinkingResponse`` (form field ``JWT``), verified
  with the tool's keys (RS256, ``iss`` = client id, ``aud`` = this platform, not expired, nonce never seen,
  ``data`` of a request this platform issued); its ``ltiResourceLink`` items become course ``links``.
- ``GET /nrps/<context>/memberships``: NRPS 2.0 membership container, ``page_size`` members per page,
  ``Link: <...>; rel="next"`` to the next page; needs a bearer token with the NRPS scope.

Tests edit ``roster`` (members per context) and can make one request fail (``fail_next``).
"""

from __future__ import annotations

import html
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
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
GRANTED_SCOPES = {NRPS_SCOPE, LINEITEM_SCOPE, SCORE_SCOPE}
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
        self.lineitems: dict[str, dict[str, dict[str, Any]]] = {}  # context -> id -> line item
        self.scores: list[dict[str, Any]] = []  # every accepted score, with its "lineitem"
        self.links: dict[str, list[dict[str, Any]]] = {}  # context -> deep-linked resource links
        self._deep_link_data: dict[str, str] = {}  # data of issued deep linking requests -> context
        self.seen_nonces: set[str] = set()
        self._lock = threading.Lock()

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.lms.backend_url}/ags/{quote(context_id, safe='')}/lineitems"

    def memberships_url(self, context_id: str) -> str:
        return f"{self.lms.backend_url}/nrps/{quote(context_id, safe='')}/memberships"

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes = b""
    ) -> Answer:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["ags"] and len(parts) >= 3 and parts[2] == "lineitems":
            return self.ags(method, parts[1], parts[3:], query, headers, body)
        if method == "POST" and path == "/lti13/deep_link_return":
            return self.deep_link_return(query.get("JWT", ""))
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

    def _tool_key(self, token: str) -> Any:
        # Registered with the tool: its JWKS URL, by default the hub's own /hub/lti13/jwks.
        url = self.lms.config.tool_jwks_url or self.lms.config.hub_url.rstrip("/") + "/hub/lti13/jwks"
        kid = jwt.get_unverified_header(token).get("kid")
        with urllib.request.urlopen(url, timeout=5) as r:
            keys = jwt.PyJWKSet.from_dict(json.loads(r.read()))
        key = next((k for k in keys.keys if k.key_id == kid), None)
        if key is None:
            raise ValueError(f"no tool key with kid {kid!r}")
        return key.key

    def _verify_assertion(self, assertion: str) -> dict[str, Any]:
        key = self._tool_key(assertion)
        client_id = self.lms.config.client_id
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
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

    # --- the course page's Advantage sections --------------------------------------------------

    def course_sections(self) -> str:
        """Roster, gradebook and deep-linked links of the sample course, plus their buttons."""
        context = self.lms.course.context_id
        rows = "".join(
            f"<tr><td>{html.escape(m['user_id'])}</td><td>{html.escape(', '.join(_kinds(m['roles'])))}</td>"
            f"<td>{html.escape(m['status'])}</td></tr>"
            for m in self.roster.get(context, [])
        )
        items = {i["id"]: i for i in self.lineitems.get(context, {}).values()}
        grades = (
            "".join(
                f"<tr><td>{html.escape(str(items.get(s['lineitem'], {}).get('label', s['lineitem'])))}</td>"
                f"<td>{html.escape(s['userId'])}</td><td>{s['scoreGiven']:g} / {s['scoreMaximum']:g}</td>"
                f"<td>{html.escape(s['gradingProgress'])}</td></tr>"
                for s in self.scores
                if s["lineitem"] in items
            )
            or "<tr><td colspan='4'>No grades yet (the hub posts them to /hub/lti13/ags/scores).</td></tr>"
        )
        links = "".join(
            f"<li><form method='get' action='/launch/13/student/link={n}'><button type='submit'>"
            f"Open {html.escape(str(link.get('title') or 'Jupyter link'))} as student</button></form></li>"
            for n, link in enumerate(self.links.get(context, []), start=1)
        )
        return (
            "<section><h2>Jupyter links</h2><div class='cards'>"
            "<div class='card'><form method='get' action='/launch/13/instructor/deeplink'>"
            "<button type='submit'>Add a Jupyter link (deep linking, as instructor)</button></form>"
            "<p>The hub asks what the link opens and answers with a signed LtiDeepLinkingResponse.</p></div>"
            "<div class='card'><form method='get' action='/frame/13/student'>"
            "<button type='submit'>Open the hub inside this course page</button></form>"
            "<p>An LTI 1.3 launch inside an iframe of this page.</p></div></div>"
            f"<ul>{links}</ul></section>"
            "<section><h2>Roster</h2><p>What the hub reads over NRPS on instructor launches.</p>"
            f"<table><tr><th>User</th><th>Role</th><th>Status</th></tr>{rows}</table></section>"
            "<section><h2>Gradebook</h2><table><tr><th>Item</th><th>User</th><th>Score</th>"
            f"<th>Grading</th></tr>{grades}</table></section>"
        )

    # --- deep linking ----------------------------------------------------------------------------

    def deep_link_settings(self, context_id: str) -> dict[str, Any]:
        data = secrets.token_urlsafe(12)
        with self._lock:
            self._deep_link_data[data] = context_id
        return {
            "deep_link_return_url": f"{self.lms.url}/lti13/deep_link_return",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "data": data,
        }

    def deep_link_return(self, token: str) -> Answer:
        lti, dl = (
            "https://purl.imsglobal.org/spec/lti/claim/",
            "https://purl.imsglobal.org/spec/lti-dl/claim/",
        )
        try:
            claims = jwt.decode(
                token,
                self._tool_key(token),
                algorithms=["RS256"],
                audience=self.lms.issuer,
                issuer=self.lms.config.client_id,
                options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
            )
        except (jwt.PyJWTError, OSError, ValueError) as e:
            return self._refuse(401, "invalid_request", f"deep linking response refused: {e}")
        if claims.get(lti + "message_type") != "LtiDeepLinkingResponse":
            return self._refuse(400, "invalid_request", "not an LtiDeepLinkingResponse")
        if claims.get(lti + "deployment_id") != self.lms.config.deployment_id:
            return self._refuse(400, "invalid_request", "wrong deployment_id")
        with self._lock:
            if claims["nonce"] in self.seen_nonces:
                return self._refuse(401, "invalid_request", "nonce already used (a replayed response)")
            self.seen_nonces.add(claims["nonce"])
            context_id = self._deep_link_data.pop(str(claims.get(dl + "data")), None)
        if context_id is None:
            return self._refuse(400, "invalid_request", "data does not match a deep linking request")
        items = [i for i in claims.get(dl + "content_items") or [] if i.get("type") == "ltiResourceLink"]
        self.links.setdefault(context_id, []).extend(items)
        return Answer(200, {"added": len(items), "links": len(self.links[context_id])})

    # --- AGS --------------------------------------------------------------------------------------

    def _scopes(self, headers: dict[str, str]) -> frozenset[str]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        scopes, expires = self.tokens.get(auth.removeprefix("Bearer "), (frozenset(), 0.0))
        return scopes if expires >= time.time() else frozenset()

    def ags(
        self,
        method: str,
        context_id: str,
        rest: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> Answer:
        scopes = self._scopes(headers)
        items = self.lineitems.setdefault(context_id, {})
        url = self.lineitems_url(context_id)
        if not rest and method == "GET":
            if LINEITEM_SCOPE not in scopes:
                return self._refuse(401, "invalid_token", "no valid bearer token with the line item scope")
            link = query.get("resource_link_id")
            return Answer(200, [i for i in items.values() if not link or i.get("resourceLinkId") == link])
        if not rest and method == "POST":
            if LINEITEM_SCOPE not in scopes:
                return self._refuse(401, "invalid_token", "no valid bearer token with the line item scope")
            item = json.loads(body)
            if not isinstance(item.get("scoreMaximum"), int | float) or item["scoreMaximum"] <= 0:
                return self._refuse(400, "invalid_request", "a line item needs a positive scoreMaximum")
            item["id"] = f"{url}/{len(items) + 1}"
            items[str(len(items) + 1)] = item
            return Answer(201, item)
        if len(rest) == 2 and rest[1] == "scores" and method == "POST":
            if SCORE_SCOPE not in scopes:
                return self._refuse(401, "invalid_token", "no valid bearer token with the score scope")
            if rest[0] not in items:
                return self._refuse(404, "not_found", "no such line item")
            return self._score(context_id, items[rest[0]], json.loads(body))
        return Answer(404, {"error": "not_found"})

    def _score(self, context_id: str, item: dict[str, Any], score: dict[str, Any]) -> Answer:
        given, maximum = score.get("scoreGiven"), score.get("scoreMaximum")
        if not isinstance(given, int | float) or not isinstance(maximum, int | float):
            return self._refuse(400, "invalid_request", "scoreGiven and scoreMaximum must be numbers")
        if not 0 <= given <= maximum:
            return self._refuse(400, "invalid_request", "scoreGiven is out of range")
        for field_name in ("userId", "activityProgress", "gradingProgress", "timestamp"):
            if not score.get(field_name):
                return self._refuse(400, "invalid_request", f"the score lacks {field_name}")
        roster = self.roster.get(context_id)
        if roster is not None and score["userId"] not in {m["user_id"] for m in roster}:
            return self._refuse(400, "invalid_request", "the user is not on this course")
        with self._lock:
            self.scores.append(score | {"lineitem": item["id"]})
        return Answer(200, {})

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


def _kinds(roles: list[str]) -> list[str]:
    return [r.rsplit("#", 1)[-1] for r in roles]
