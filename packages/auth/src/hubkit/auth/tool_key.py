"""The tool's own signing key (LTI Advantage): its public JWKS and RFC 7523 client assertions.

The hub signs with one RSA key read from a PEM file shared by every replica; the LMS fetches the public
half from ``/hub/lti13/jwks`` (the "Public JWK URL" / "Keyset URL" of the tool's registration). Signing
and encoding are PyJWT's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 300


@dataclass(frozen=True)
class ToolKey:
    """The tool's RSA private key and its key id (a digest of the public key, stable across restarts)."""

    key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def from_pem_file(cls, path: str | Path) -> ToolKey:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError) as e:
            raise ValueError(
                f"The LTI tool key {str(path)!r} cannot be read as a PEM private key: {e}"
            ) from e
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
            raise ValueError(f"The LTI tool key {str(path)!r} must be an RSA key of at least 2048 bits.")
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode().rstrip("=")
        return cls(key, f"hubkit-{kid}")

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [jwk | {"kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def client_assertion(self, client_id: str, audience: str) -> str:
        """An RFC 7523 client assertion: the tool (``client_id``) authenticating to a token endpoint."""
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": secrets.token_urlsafe(16),
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
