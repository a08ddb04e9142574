"""An honest CILogon-like OpenID Connect provider on loopback.

Discovery (``/.well-known/openid-configuration``), JWKS (``/oauth2/certs``), the authorization code flow
(``/authorize`` → ``/oauth2/token`` with client secret and PKCE checks, one-time codes) and
``/oauth2/userinfo``. id_tokens are RS256-signed with the provider's own key and carry CILogon's claims
(``idp``, ``idp_name``, ``eppn``, ``email``, ``isMemberOf``). There is no login UI: the person whose
browser is signed in is set with :meth:`FakeOIDC.sign_in`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .loopback_http import LoopbackHTTPServer


@dataclass
class OIDCPerson:
    sub: str
    idp: str
    email: str
    groups: list[str] = field(default_factory=list)
    name: str = ""

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "idp": self.idp,
            "idp_name": self.idp.split("/")[2] if "://" in self.idp else self.idp,
            "email": self.email,
            "eppn": self.email,
            "name": self.name or self.email.split("@")[0],
            "isMemberOf": list(self.groups),
        }


@dataclass
class _Grant:
    sub: str
    redirect_uri: str
    nonce: str
    challenge: str


class FakeOIDC:
    def __init__(
        self, client_id: str = "cilogon:/client_id/hubkit", client_secret: str = "oidc-secret"
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "oidc-" + secrets.token_hex(4)
        self.people: dict[str, OIDCPerson] = {}
        self.signed_in: str | None = None
        self.id_token_overrides: dict[str, Any] = {}
        self.signing_key: rsa.RSAPrivateKey | None = None  # sign with another key (forgery tests)
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, str] = {}
        self._http = LoopbackHTTPServer(_handler(self), "fake-oidc")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> FakeOIDC:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def sign_in(self, sub: str) -> None:
        self.signed_in = sub

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/oauth2/token",
            "userinfo_endpoint": f"{self.url}/oauth2/userinfo",
            "jwks_uri": f"{self.url}/oauth2/certs",
            "response_types_supported": ["code"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [jwk | {"kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return 400, {}, "Unknown client or unsupported response_type."
        if "openid" not in query.get("scope", "").split():
            return 400, {}, "The openid scope is required."
        if not self.signed_in or self.signed_in not in self.people:
            return 401, {}, "Nobody is signed in."
        code = secrets.token_hex(12)
        self._codes[code] = _Grant(
            self.signed_in,
            query.get("redirect_uri", ""),
            query.get("nonce", ""),
            query.get("code_challenge", ""),
        )
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": target}, ""

    def token(self, form: dict[str, str], basic: str) -> tuple[int, dict[str, Any]]:
        if basic:
            client_id, _, secret = base64.b64decode(basic).decode().partition(":")
            form = {"client_id": client_id, "client_secret": secret} | form
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return 400, {"error": "invalid_grant"}
        if grant.challenge:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
                return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        access = secrets.token_hex(16)
        self._tokens[access] = grant.sub
        now = int(time.time())
        claims = self.people[grant.sub].claims() | {
            "iss": self.url,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 900,
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        claims |= self.id_token_overrides
        id_token = jwt.encode(
            claims, self.signing_key or self.key, algorithm="RS256", headers={"kid": self.kid}
        )
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 900, "id_token": id_token}

    def userinfo(self, auth: str) -> tuple[int, dict[str, Any]]:
        sub = self._tokens.get(auth.split(" ", 1)[-1]) if auth else None
        if sub is None:
            return 401, {"error": "invalid_token"}
        return 200, self.people[sub].claims()


def _handler(op: FakeOIDC) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() if not isinstance(body, str) else body.encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header(
                "Content-Type", "application/json" if not isinstance(body, str) else "text/plain"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._send(200, op.discovery())
            elif parts.path == "/oauth2/certs":
                self._send(200, op.jwks())
            elif parts.path == "/authorize":
                status, headers, text = op.authorize(dict(parse_qsl(parts.query)))
                self._send(status, text, headers)
            elif parts.path == "/oauth2/userinfo":
                self._send(*op.userinfo(self.headers.get("Authorization", "")))
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            auth = self.headers.get("Authorization", "")
            basic = auth.split(" ", 1)[1] if auth.startswith("Basic ") else ""
            if urlsplit(self.path).path == "/oauth2/token":
                self._send(*op.token(dict(parse_qsl(urlsplit(self.path).query)) | form, basic))
            elif urlsplit(self.path).path == "/oauth2/userinfo":
                self._send(*op.userinfo(auth))
            else:
                self._send(404, {"error": "not_found"})

    return Handler
