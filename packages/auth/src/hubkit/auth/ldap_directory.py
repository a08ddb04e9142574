"""Synchronous directory lookups for the LDAP authenticator (run in a thread, never on the event loop).

Every value from a user goes through ``escape_filter_chars`` (filters) or ``escape_rdn`` (DNs). Nested
groups are resolved breadth-first (bounded depth) or, on Active Directory, with the in-chain rule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from .exceptions import HubKitAuthError

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (Active Directory)
# Root DSE supportedCapabilities of Active Directory (and AD LDS): the servers that implement IN_CHAIN.
# Others (OpenLDAP, 389-ds) answer an in-chain filter with "success" and no entries, which would
# silently strip everyone's groups, so the rule is used only where the server says it is AD.
AD_CAPABILITIES = frozenset({"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1851"})
MAX_DEPTH = 10


class DirectoryUnavailable(HubKitAuthError):
    """No LDAP server of the pool answered (in time)."""


@dataclass(frozen=True)
class DirectorySettings:
    """Where and how to talk to the directory (built from the authenticator's traits)."""

    urls: tuple[str, ...]
    use_tls: str  # "insecure", "before_bind", "on_connect"
    connect_timeout: float
    receive_timeout: float
    search_user: str
    search_password: str
    user_search_base: str
    user_attribute: str
    group_search_base: str
    bind_dn_templates: tuple[str, ...] = ()
    key_attribute: str = "entryUUID"
    in_chain: bool = False


@dataclass
class DirectoryUser:
    dn: str
    login: str
    key_value: str
    uid_number: int | None
    gid_number: int | None
    groups: dict[str, str] = field(default_factory=dict)  # group DN -> cn
    posix_groups: dict[str, int] = field(default_factory=dict)  # cn -> gidNumber


class Directory:
    def __init__(
        self, settings: DirectorySettings, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
    ) -> None:
        self.settings = settings
        self.log = logger or logging.getLogger(__name__)
        servers = [
            ldap3.Server(
                url, connect_timeout=settings.connect_timeout, use_ssl=settings.use_tls == "on_connect"
            )
            for url in settings.urls
        ]
        # FIRST with active=1/exhaust: try each server once per operation, skip dead ones for a while.
        # (ldap3 takes a cycle count / seconds here; its stubs only admit bools.)
        self.pool = ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=30)  # type: ignore[arg-type]
        self._in_chain: dict[str, bool] = {}  # server URL -> offers the in-chain rule
        self._in_chain_lock = threading.Lock()

    def _connect(self, user: str | None, password: str | None) -> ldap3.Connection:
        auto_bind = (
            ldap3.AUTO_BIND_TLS_BEFORE_BIND
            if self.settings.use_tls == "before_bind"
            else ldap3.AUTO_BIND_NO_TLS
        )
        try:
            return ldap3.Connection(
                self.pool,
                user=user,
                password=password,
                auto_bind=auto_bind,
                receive_timeout=max(1, round(self.settings.receive_timeout)),  # ldap3 packs it as an int
                raise_exceptions=False,
            )
        except LDAPBindError:
            raise
        except (LDAPException, OSError) as e:
            raise DirectoryUnavailable(f"No LDAP server answered: {type(e).__name__}: {e}") from e

    def _search_connection(self) -> ldap3.Connection:
        s = self.settings
        try:
            return self._connect(s.search_user or None, s.search_password or None)
        except LDAPBindError as e:
            raise DirectoryUnavailable(f"The search user could not bind: {e}") from e

    def find(self, login: str) -> DirectoryUser | None:
        """The user entry for ``login`` with groups, or None when there is no such (single) user."""
        conn = self._search_connection()
        try:
            return self._find(conn, login)
        finally:
            conn.unbind()

    def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        """Bind as the user; None for a wrong password or unknown user."""
        if not password:
            return None  # an empty password would be an anonymous bind, which always "succeeds"
        user = self.find(login) if not self.settings.bind_dn_templates else None
        dns = (
            [user.dn]
            if user
            else [t.format(username=escape_rdn(login)) for t in self.settings.bind_dn_templates]
        )
        for dn in dns:
            try:
                conn = self._connect(dn, password)
            except LDAPBindError:
                continue
            try:
                return user or self._find(conn, login)
            finally:
                conn.unbind()
        return None

    def _find(self, conn: ldap3.Connection, login: str) -> DirectoryUser | None:
        s = self.settings
        attrs = [s.user_attribute, "uidNumber", "gidNumber", s.key_attribute]
        query = f"({s.user_attribute}={escape_filter_chars(login)})"
        self._search(conn, s.user_search_base, query, attrs)
        entries = list(conn.entries)
        if len(entries) != 1:
            return None
        entry = entries[0]
        values = entry.entry_attributes_as_dict
        user = DirectoryUser(
            dn=entry.entry_dn,
            login=_first(values.get(s.user_attribute)) or login,
            key_value=_first(values.get(s.key_attribute)) or _first(values.get(s.user_attribute)) or login,
            uid_number=_int(values.get("uidNumber")),
            gid_number=_int(values.get("gidNumber")),
        )
        user.groups = self._groups(conn, user.dn)
        user.posix_groups = self._posix_groups(conn, user.login)
        return user

    def _search(self, conn: ldap3.Connection, base: str, query: str, attrs: Sequence[str]) -> None:
        ok = conn.search(
            base, query, attributes=list(attrs), time_limit=int(self.settings.receive_timeout) or 1
        )
        result = conn.result or {}
        if not ok and result.get("description") not in ("success", "noSuchObject"):
            raise DirectoryUnavailable(f"LDAP search under {base} failed: {result.get('description')}")

    def _groups(self, conn: ldap3.Connection, dn: str) -> dict[str, str]:
        base, found = self.settings.group_search_base, dict[str, str]()
        if self.settings.in_chain and self._offers_in_chain(conn):
            self._search(conn, base, f"(member:{IN_CHAIN}:={escape_filter_chars(dn)})", ["cn"])
            return {
                e.entry_dn: _first(e.entry_attributes_as_dict.get("cn")) or e.entry_dn for e in conn.entries
            }
        frontier = [dn]
        for _ in range(MAX_DEPTH):
            if not frontier:
                break
            members = "".join(
                f"(member={escape_filter_chars(d)})(uniqueMember={escape_filter_chars(d)})" for d in frontier
            )
            self._search(conn, base, f"(|{members})", ["cn"])
            frontier = []
            for e in conn.entries:
                if e.entry_dn not in found:
                    found[e.entry_dn] = _first(e.entry_attributes_as_dict.get("cn")) or e.entry_dn
                    frontier.append(e.entry_dn)
        return found

    def _offers_in_chain(self, conn: ldap3.Connection) -> bool:
        """Whether the server behind ``conn`` is Active Directory (read once per server from its root DSE)."""
        server = str(getattr(conn.server, "name", "") or conn.server)
        with self._in_chain_lock:
            if server in self._in_chain:
                return self._in_chain[server]
        conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["supportedCapabilities"])
        entries = list(conn.entries)
        capabilities = (
            {str(c) for c in entries[0].entry_attributes_as_dict.get("supportedCapabilities", [])}
            if entries
            else set()
        )
        offers = bool(capabilities & AD_CAPABILITIES)
        if not offers:
            self.log.warning(
                "LDAP server %s does not offer the in-chain matching rule (not Active Directory); "
                "resolving nested groups level by level instead",
                server,
            )
        with self._in_chain_lock:
            self._in_chain[server] = offers
        return offers

    def _posix_groups(self, conn: ldap3.Connection, login: str) -> dict[str, int]:
        query = f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(login)}))"
        self._search(conn, self.settings.group_search_base, query, ["cn", "gidNumber"])
        groups: dict[str, int] = {}
        for e in conn.entries:
            values = e.entry_attributes_as_dict
            cn, gid = _first(values.get("cn")), _int(values.get("gidNumber"))
            if cn and gid is not None:
                groups[cn] = gid
        return groups


def _first(values: object) -> str | None:
    if isinstance(values, list) and values:
        return str(values[0])
    return None


def _int(values: object) -> int | None:
    first = _first(values)
    try:
        return int(first) if first is not None else None
    except ValueError:
        return None
