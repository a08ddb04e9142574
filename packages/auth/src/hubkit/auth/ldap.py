"""``HubKitLDAPAuthenticator``: ldapauthenticator's settings, done off the event loop with failover."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from typing import Any

from ldapauthenticator import LDAPAuthenticator  # type: ignore[import-untyped]
from tornado.web import HTTPError
from traitlets import Bool, Float, List, Unicode, default

from .accounts import PENDING_KEY, IdentityAuthenticatorMixin
from .exceptions import HubKitAuthError
from .identity import MIN_ID, posix_group_name
from .ldap_directory import (
    DEFAULT_GROUP_FILTER,
    Directory,
    DirectorySettings,
    DirectoryUnavailable,
    DirectoryUntrusted,
    DirectoryUser,
)


class HubKitLDAPAuthenticator(IdentityAuthenticatorMixin, LDAPAuthenticator):  # type: ignore[misc]
    """LDAP/AD: server pool, nested and admin groups, POSIX numbers into the identity, refresh."""

    hubkit_provider = "ldap"

    server_urls = List(
        Unicode(),
        config=True,
        help="""LDAP servers tried in order (``ldap://host:389``, ``ldaps://host:636``); a server that
        does not answer within ``connect_timeout`` is skipped for 30 s. Empty: ``server_address`` and
        ``server_port`` (upstream settings) name the only server.""",
    )
    connect_timeout = Float(5.0, config=True, help="Seconds to wait for a TCP connection to one server.")
    receive_timeout = Float(10.0, config=True, help="Seconds to wait for one LDAP answer.")
    group_search_base = Unicode(
        "",
        config=True,
        help="""Where groups (groupOfNames, groupOfUniqueNames, posixGroup) are searched; empty means
        ``user_search_base``.""",
    )
    admin_groups = List(
        Unicode(),
        config=True,
        help="""Groups (DN or cn) whose members, directly or through nested groups, are hub admins.""",
    )
    use_in_chain_rule = Bool(
        False,
        config=True,
        help="""Resolve nested groups with Active Directory's LDAP_MATCHING_RULE_IN_CHAIN in one search.
        Used only on servers whose root DSE says they are Active Directory (AD/AD LDS capabilities);
        any other server gets a warning in the log and groups are walked level by level.""",
    )
    key_attribute = Unicode(
        "entryUUID",
        config=True,
        help="""Attribute giving the immutable part of the identity key ``ldap:<value>`` (``objectGUID``
        on AD); the login attribute is used when the entry has none.""",
    )
    max_username_length = 64

    @default("id_range")
    def _default_id_range(self) -> tuple[int, int]:
        return (4_000_000, 4_999_999)

    def _settings(self) -> DirectorySettings:
        scheme = "ldaps" if self.tls_strategy.name == "on_connect" else "ldap"
        urls = tuple(self.server_urls) or (f"{scheme}://{self.server_address}:{self.server_port}",)
        templates = (
            self.bind_dn_template if isinstance(self.bind_dn_template, list) else [self.bind_dn_template]
        )
        return DirectorySettings(
            urls=urls,
            use_tls=self.tls_strategy.name,
            connect_timeout=self.connect_timeout,
            receive_timeout=self.receive_timeout,
            search_user=self.lookup_dn_search_user,
            search_password=self.lookup_dn_search_password,
            user_search_base=self.user_search_base,
            user_attribute=self.user_attribute,
            group_search_base=self.group_search_base or self.user_search_base,
            bind_dn_templates=tuple(t for t in templates if t),
            key_attribute=self.key_attribute,
            in_chain=self.use_in_chain_rule,
            tls_kwargs=dict(self.tls_kwargs),
            lookup=bool(self.lookup_dn),
            lookup_filter=self.lookup_dn_search_filter or "({login_attr}={login})",
            user_dn_attribute=self.lookup_dn_user_dn_attribute or "",
            search_filter=self.search_filter or "",
            search_attributes=tuple(self.attributes),
            state_attributes=tuple(self.auth_state_attributes),
            allowed_groups=tuple(self.allowed_groups or ()),
            group_filter=self.group_search_filter,
            group_attributes=tuple(self.group_attributes),
        )

    @property
    def directory(self) -> Directory:
        found = getattr(self, "_directory", None)
        if found is None:
            found = self._directory = Directory(self._settings(), self.log)
        return found

    def _plausible(self, login: str) -> bool:
        return 0 < len(login) <= self.max_username_length and not any(
            unicodedata.category(c) == "Cc" for c in login
        )

    async def authenticate(self, handler: Any, data: Any = None) -> dict[str, Any] | None:
        login, password = str((data or {}).get("username", "")), str((data or {}).get("password", ""))
        if not self._plausible(login):
            self.log.warning("LDAP login refused: implausible username %r", login[:80])
            return None
        if not re.match(self.valid_username_regex, login):
            self.log.warning(
                "LDAP login refused: %r does not match valid_username_regex %r",
                login[:80],
                self.valid_username_regex,
            )
            return None
        try:
            user = await asyncio.to_thread(self.directory.authenticate, login, password)
        except DirectoryUntrusted as e:
            self.log.error(
                "LDAP login of %r refused: %s (servers %s)", login, e, ", ".join(self._settings().urls)
            )
            raise HTTPError(
                503,
                "The login directory's TLS certificate could not be verified, so no password was sent; "
                "ask the hub's admins to check tls_kwargs and the directory's certificate.",
            ) from e
        except DirectoryUnavailable as e:
            self.log.error(
                "LDAP login of %r failed: %s (servers %s)", login, e, ", ".join(self._settings().urls)
            )
            raise HTTPError(
                503, "The login directory (LDAP) is not answering; try again in a few minutes."
            ) from e
        if user is None:
            self.log.warning("LDAP login refused for %r: wrong password or no such user.", login)
            return None
        name = user.resolved if self.use_lookup_dn_username else login
        try:
            return self._model(user, name)
        except HubKitAuthError as e:
            self.log.warning("LDAP login refused for %r: %s", login, e)
            raise HTTPError(403, str(e)) from e

    def _model(self, user: DirectoryUser, name: str) -> dict[str, Any]:
        """The auth model: upstream's auth_state keys, HubKit's ``ldap`` block beside them, and the
        identity to write once the login is admitted."""
        names = {dn.lower() for dn in user.groups} | {cn.lower() for cn in user.groups.values()}
        names |= {cn.lower() for cn in user.posix_groups}
        numbers = None
        if user.uid_number and user.uid_number >= MIN_ID and user.gid_number and user.gid_number >= MIN_ID:
            numbers = (user.uid_number, user.gid_number)
        posix = {posix_group_name(cn): gid for cn, gid in user.posix_groups.items() if gid >= MIN_ID}
        username = self.normalize_username(name)
        group_names = sorted({*user.groups.values(), *user.posix_groups})
        return {
            "name": name,
            "admin": bool(names & {g.lower() for g in self.admin_groups}) or None,
            "groups": [f"ldap:{g}" for g in group_names],
            "auth_state": {
                "ldap_groups": user.ldap_groups,
                "user_attributes": user.attributes,
                "ldap": {"dn": user.dn, "groups": group_names, "group_dns": sorted(user.groups)},
            },
            PENDING_KEY: self.hubkit_pending(f"ldap:{user.key_value}", username, numbers, posix),
        }

    def check_allowed(self, username: str, auth_model: dict[str, Any] | None = None) -> bool:
        if username in self.allowed_users:
            return True
        wanted = {g.lower() for g in self.allowed_groups or ()}
        state = (auth_model or {}).get("auth_state") or {}
        have = {g.lower() for g in state.get("ldap_groups", [])}  # upstream: group_search_filter decides
        if self.group_search_filter == DEFAULT_GROUP_FILTER:
            # With upstream's default filter, members of nested groups and posixGroup members count too.
            ldap_state = state.get("ldap", {})
            have |= {g.lower() for g in ldap_state.get("groups", [])}
            have |= {g.lower() for g in ldap_state.get("group_dns", [])}
        allowed = bool(wanted & have) or bool(auth_model and auth_model.get("admin"))
        if not allowed:
            self.log.warning("LDAP user %r is in none of the allowed groups %s.", username, sorted(wanted))
        return allowed

    async def refresh_user(self, user: Any, handler: Any = None) -> Any:
        login = user.name.removeprefix(self.hubkit_username_prefix)
        try:
            found = await asyncio.to_thread(self.directory.find, login)
        except DirectoryUnavailable as e:
            self.log.warning("LDAP refresh of %r skipped: %s", user.name, e)
            return True  # keep the session while the directory is down; the next refresh rechecks
        if found is None:
            self.log.warning("LDAP user %r no longer exists; logging them out.", user.name)
            return False
        model = self._model(found, login)
        model["name"] = user.name
        if not (self.allow_all or self.check_allowed(user.name, model)):
            self.log.warning("LDAP user %r lost access at refresh; logging them out.", user.name)
            return False
        if model["admin"] is None:
            model["admin"] = user.name in self.admin_users
        return await self.hubkit_admit(model)
