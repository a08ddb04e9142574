"""LTI 1.3 platform registry and id_token claim checks (pure: the signing key is passed in)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from . import deep_linking
from .exceptions import LaunchRejected
from .framing import check_origin

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DEPLOYMENT = LTI + "deployment_id"
MESSAGE_TYPE = LTI + "message_type"
CUSTOM = LTI + "custom"
ROLES = LTI + "roles"
CONTEXT = LTI + "context"
TARGET_LINK = LTI + "target_link_uri"


@dataclass(frozen=True)
class Platform:
    """One registered LMS: its issuer, our client ids there, where it authorizes and publishes keys."""

    issuer: str
    client_ids: tuple[str, ...]
    authorize_url: str
    jwks_url: str
    deployment_ids: tuple[str, ...]
    frame_origins: tuple[str, ...] = ()  # LMS pages that may show the hub in an iframe
    token_url: str = ""  # OAuth2 token endpoint for LTI Advantage services (NRPS, AGS)

    @classmethod
    def from_config(cls, issuer: str, entry: Mapping[str, Any]) -> Platform:
        unknown = set(entry) - {
            "client_ids",
            "authorize_url",
            "jwks_url",
            "deployment_ids",
            "frame_origins",
            "token_url",
        }
        if unknown:
            raise ValueError(
                f"LTI 1.3 platform {issuer!r} has unknown settings: {', '.join(sorted(unknown))}."
            )
        try:
            return cls(
                issuer=issuer,
                client_ids=tuple(entry["client_ids"]),
                authorize_url=str(entry["authorize_url"]),
                jwks_url=str(entry["jwks_url"]),
                deployment_ids=tuple(entry.get("deployment_ids", ())),
                frame_origins=tuple(check_origin(str(o)) for o in entry.get("frame_origins", ())),
                token_url=str(entry.get("token_url", "")),
            )
        except KeyError as e:
            raise ValueError(f"LTI 1.3 platform {issuer!r} lacks the setting {e.args[0]!r}.") from e

    def check_deployment(self, deployment_id: object) -> None:
        if not isinstance(deployment_id, str) or not deployment_id:
            raise LaunchRejected("The launch names no LTI deployment.", 401)
        if "*" not in self.deployment_ids and deployment_id not in self.deployment_ids:
            raise LaunchRejected("The launch comes from an LMS deployment this hub does not allow.", 401)


def unverified_header(token: str) -> dict[str, Any]:
    try:
        return dict(jwt.get_unverified_header(token))
    except jwt.DecodeError as e:
        raise LaunchRejected("The launch's id_token is not a well-formed JWT.") from e


def unverified_issuer(token: str) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.DecodeError as e:
        raise LaunchRejected("The launch's id_token is not a well-formed JWT.") from e
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise LaunchRejected("The launch's id_token names no issuer.", 401)
    return issuer


def verify_id_token(
    token: str, key: jwt.PyJWK, platform: Platform, nonce: str, max_age: float
) -> dict[str, Any]:
    """Signature, issuer, audience, expiry, age, nonce and deployment of an id_token; returns the claims."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=list(platform.client_ids),
            issuer=platform.issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as e:
        raise LaunchRejected("The launch has expired; launch again from the LMS.", 401) from e
    except jwt.InvalidAudienceError as e:
        raise LaunchRejected("The launch is meant for another tool (audience does not match).", 401) from e
    except jwt.InvalidIssuerError as e:
        raise LaunchRejected("The launch's issuer does not match the registered LMS.", 401) from e
    except jwt.InvalidSignatureError as e:
        raise LaunchRejected("The launch's signature is not valid.", 401) from e
    except jwt.PyJWTError as e:
        raise LaunchRejected(f"The launch's id_token is not valid ({type(e).__name__}).", 401) from e
    if time.time() - float(claims["iat"]) > max_age:
        raise LaunchRejected("The launch was issued too long ago; launch again from the LMS.", 401)
    if claims["nonce"] != nonce:
        raise LaunchRejected("The launch does not belong to this login attempt (nonce mismatch).", 401)
    azp = claims.get("azp")
    if isinstance(claims["aud"], list) and len(claims["aud"]) > 1 and azp not in platform.client_ids:
        raise LaunchRejected("The launch is meant for another tool (authorized party does not match).", 401)
    platform.check_deployment(claims.get(DEPLOYMENT))
    if claims.get(MESSAGE_TYPE) == deep_linking.REQUEST:
        deep_linking.check_request(claims)
    elif claims.get(MESSAGE_TYPE) != "LtiResourceLinkRequest":
        raise LaunchRejected("Only resource link and deep linking launches can log in to this hub.")
    if claims.get(LTI + "version") != "1.3.0":
        raise LaunchRejected("The launch is not an LTI 1.3.0 message; check the LTI version in the LMS.")
    link = claims.get(LTI + "resource_link")
    if claims.get(MESSAGE_TYPE) != deep_linking.REQUEST and (
        not isinstance(link, dict) or not link.get("id")
    ):
        raise LaunchRejected("The launch names no resource link; launch again from the course in the LMS.")
    return claims
