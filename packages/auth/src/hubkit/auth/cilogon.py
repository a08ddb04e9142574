"""``HubKitCILogonAuthenticator``: CILogon with a verified id_token, ``key`` from ``sub``, claim groups."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
from oauthenticator.cilogon import CILogonOAuthenticator  # type: ignore[import-untyped]
from tornado.web import HTTPError
from traitlets import Unicode, default

from .accounts import PENDING_KEY, IdentityAuthenticatorMixin
from .exceptions import HubKitAuthError, LaunchRejected
from .jwks import JWKSCache


class HubKitCILogonAuthenticator(IdentityAuthenticatorMixin, CILogonOAuthenticator):  # type: ignore[misc]
    """CILogon (``idps`` with per-IdP username derivation upstream) plus the HubKit identity and groups."""

    hubkit_provider = "cilogon"

    groups_claim = Unicode(
        "isMemberOf",
        config=True,
        help="""Userinfo claim listing the person's groups (a list, or a comma-separated string); each
        value ``v`` becomes the hub group ``cilogon:v``. ``allowed_groups``/``admin_groups`` use those
        prefixed names.""",
    )
    discovery_url = Unicode(
        config=True,
        help="""OpenID discovery document of the provider; its ``issuer`` and ``jwks_uri`` are used to
        verify the id_token returned with the access token. Default: CILogon's, from ``cilogon_host``.""",
    )

    @default("discovery_url")
    def _default_discovery_url(self) -> str:
        return f"https://{self.cilogon_host}/.well-known/openid-configuration"

    @default("id_range")
    def _default_id_range(self) -> tuple[int, int]:
        return (5_000_000, 5_999_999)

    @property
    def jwks(self) -> JWKSCache:
        cache = getattr(self, "_jwks_cache", None)
        if cache is None:
            cache = self._jwks_cache = JWKSCache()
        return cache

    async def _discovery(self) -> dict[str, Any]:
        found: dict[str, Any] | None = getattr(self, "_discovered", None)
        if found is None:
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.get(self.discovery_url)
                response.raise_for_status()
                found = self._discovered = dict(response.json())
            except (httpx.HTTPError, ValueError) as e:
                raise LaunchRejected(
                    "The hub could not reach CILogon to verify your sign-in; try again later.", 503
                ) from e
        return found

    async def verified_claims(self, token_response: dict[str, Any]) -> dict[str, Any]:
        """The id_token's claims after checking signature, issuer, audience and expiry."""
        token = token_response.get("id_token")
        if not token:
            raise LaunchRejected("CILogon returned no id_token, so the sign-in cannot be verified.", 403)
        discovery = await self._discovery()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = await self.jwks.key(str(discovery["jwks_uri"]), kid)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=str(discovery["issuer"]),
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as e:
            raise LaunchRejected(
                f"Your sign-in could not be verified ({type(e).__name__}); try again.", 403
            ) from e
        return claims

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        auth_model = await super().update_auth_model(auth_model)
        state = auth_model["auth_state"]
        user_info = state[self.user_auth_state_key]
        try:
            claims = await self.verified_claims(state.get("token_response") or {})
            if claims["sub"] != user_info.get("sub"):
                raise LaunchRejected("Your sign-in could not be verified (subject mismatch); try again.", 403)
            groups = await self.get_user_groups(state)
            auth_model[PENDING_KEY] = self.hubkit_pending(
                f"cilogon:{claims['sub']}", auth_model["name"], allocated_groups=groups
            )
        except LaunchRejected as e:
            self.log.warning(
                "CILogon login of %r refused: %s (idp=%s)", auth_model["name"], e, user_info.get("idp")
            )
            raise HTTPError(e.status, str(e)) from e
        except HubKitAuthError as e:
            self.log.warning(
                "CILogon login of %r refused: %s (idp=%s)", auth_model["name"], e, user_info.get("idp")
            )
            raise HTTPError(400, str(e)) from e  # a name HubKit cannot use (docs/auth.md: 400)
        return auth_model

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        model = await super().refresh_user(user, handler, **kwargs)
        return await self.hubkit_admit(model) if isinstance(model, dict) else model

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """``cilogon:<value>`` of ``groups_claim``, plus upstream's groups from ``auth_state_groups_key``."""
        values = (auth_state.get(self.user_auth_state_key) or {}).get(self.groups_claim) or []
        if isinstance(values, str):
            values = values.split(",")
        groups = {f"cilogon:{str(v).strip()}" for v in values if str(v).strip()}
        if self.auth_state_groups_key:
            groups |= set(await super().get_user_groups(auth_state))
        return groups
