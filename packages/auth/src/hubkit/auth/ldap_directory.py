"""Synchronous directory lookups for the LDAP authenticator (run in a thread, never on the event loop).

Every value from a user goes through ``escape_filter_chars`` (filters) or ``escape_rdn`` (DNs). Nested
groups are resolved breadth-first (bounded depth) or, on Active Directory, with the in-chain rule.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPException
from ldap3.core.tls import Tls
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from .exceptions import HubKitAuthError

IN_CHAIN = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (Active Directory)
# Root DSE supportedCapabilities of Active Directory (and AD LDS): the servers that implement IN_CHAIN.
# Others (OpenLDAP, 389-ds) answer an in-chain filter with "success" and no entries, which would
# silently strip everyone's groups, so the rule is used only where the server says it is AD.
AD_CAPABILITIES = frozenset({"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1851"})
MAX_DEPTH = 10
DEFAULT_GROUP_FILTER = "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))"


class DirectoryUnavailable(HubKitAuthError):
    """No LDAP server of the pool answered (in time)."""


class DirectoryUntrusted(DirectoryUnavailable):
    """The server's TLS certificate failed the checks ``tls_kwargs`` asks for: nothing was sent to it."""


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
    tls_kwargs: Mapping[str, Any] = field(default_factory=dict)  # ldap3.Tls(**tls_kwargs), every server
    lookup: bool = True  # find the DN with lookup_filter (upstream lookup_dn)
    lookup_filter: str = "({login_attr}={login})"
    user_dn_attribute: str = ""  # the attribute giving the resolved username; empty: user_attribute
    search_filter: str = ""  # a bound user must match it exactly once (upstream search_filter)
    search_attributes: tuple[str, ...] = ()
    state_attributes: tuple[str, ...] = ()  # auth_state["user_attributes"]
    allowed_groups: tuple[str, ...] = ()  # group DNs checked with group_filter (auth_state["ldap_groups"])
    group_filter: str = DEFAULT_GROUP_FILTER
    group_attributes: tuple[str, ...] = ("member", "uniqueMember", "memberUid")


@dataclass
class DirectoryUser:
    dn: str
    login: str
    key_value: str
    uid_number: int | None
    gid_number: int | None
    groups: dict[str, str] = field(default_factory=dict)  # group DN -> cn
    posix_groups: dict[str, int] = field(default_factory=dict)  # cn -> gidNumber
    resolved: str = ""  # the resolved username (lookup_dn_user_dn_attribute's value, else the login)
    ldap_groups: list[str] = field(default_factory=list)  # allowed_groups matched by group_filter
    attributes: dict[str, list[Any]] = field(default_factory=dict)  # auth_state_attributes' values


class Directory:
    def __init__(
        self, settings: DirectorySettings, logger: logging.Logger | logging.LoggerAdapter[Any] | None = None
    ) -> None:
        self.settings = settings
        self.log = logger or logging.getLogger(__name__)
        # Tls() raises on bad options (say a missing CA file) here, at start-up, not at the first login.
        tls = Tls(**dict(settings.tls_kwargs))
        servers = [
            ldap3.Server(
                url,
                connect_timeout=settings.connect_timeout,
                use_ssl=settings.use_tls == "on_connect",
                tls=tls,
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
            if "CERTIFICATE_VERIFY_FAILED" in str(e) or "certificate verify failed" in str(e):
                raise DirectoryUntrusted(f"TLS certificate verification failed: {e}") from e
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
            found = self._lookup(conn, login)
            if found is None:
                return None
            dn, resolved = found
            return self._user(conn, dn, login, resolved)
        finally:
            conn.unbind()

    def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        """Bind as the user; None for a wrong password, an unknown user or one ``search_filter`` excludes."""
        if not password.strip():
            return None  # an empty password would be an anonymous bind, which always "succeeds"
        s, resolved, dns = self.settings, login, list[str]()
        if s.lookup:
            conn = self._search_connection()
            try:
                found = self._lookup(conn, login)
            finally:
                conn.unbind()
            if found is None:
                return None
            dns, resolved = [found[0]], found[1]
        if s.bind_dn_templates:
            dns = [t.format(username=escape_rdn(resolved)) for t in s.bind_dn_templates]
        for dn in dns:
            try:
                conn = self._connect(dn, password)
            except LDAPBindError:
                continue
            if not conn.bound:
                conn.unbind()
                continue
            try:
                return self._user(conn, dn, login, resolved)
            finally:
                conn.unbind()
        return None

    def _lookup(self, conn: ldap3.Connection, login: str) -> tuple[str, str] | None:
        """``(dn, resolved username)`` of the one entry ``lookup_filter`` finds for ``login``."""
        s = self.settings
        dn_attribute = s.user_dn_attribute or s.user_attribute
        query = s.lookup_filter.format(login_attr=s.user_attribute, login=escape_filter_chars(login))
        self._search(conn, s.user_search_base, query, [dn_attribute])
        entries = list(conn.entries)
        if len(entries) != 1:
            self.log.warning(
                "LDAP lookup of %r found %d entries; exactly one is required.", login, len(entries)
            )
            return None
        values = entries[0].entry_attributes_as_dict.get(dn_attribute) or []
        if len(values) != 1:
            self.log.warning(
                "LDAP entry of %r has %d values of %r, not one.", login, len(values), dn_attribute
            )
            return None
        return entries[0].entry_dn, str(values[0])

    def _user(self, conn: ldap3.Connection, dn: str, login: str, resolved: str) -> DirectoryUser | None:
        """The entry at ``dn`` with groups, if it passes ``search_filter`` (searched with ``conn``)."""
        s = self.settings
        if s.search_filter:
            query = s.search_filter.format(userattr=s.user_attribute, username=escape_filter_chars(resolved))
            self._search(conn, s.user_search_base, query, s.search_attributes)
            if len(conn.entries) != 1:
                self.log.warning(
                    "LDAP login of %r refused: search_filter found %d entries for %r; exactly one is "
                    "required.",
                    login,
                    len(conn.entries),
                    resolved,
                )
                return None
        attrs = [s.user_attribute, "uidNumber", "gidNumber", s.key_attribute, *s.state_attributes]
        ok = conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=attrs)
        entries = list(conn.entries) if ok else []
        if len(entries) != 1:
            return None
        values = entries[0].entry_attributes_as_dict
        user = DirectoryUser(
            dn=entries[0].entry_dn,
            login=_first(values.get(s.user_attribute)) or resolved,
            key_value=_first(values.get(s.key_attribute)) or _first(values.get(s.user_attribute)) or resolved,
            uid_number=_int(values.get("uidNumber")),
            gid_number=_int(values.get("gidNumber")),
            resolved=resolved,
            attributes={a: _json_values(values.get(a)) for a in s.state_attributes if a in values},
        )
        user.groups = self._groups(conn, user.dn)
        user.posix_groups = self._posix_groups(conn, user.login)
        user.ldap_groups = self._allowed_groups(conn, user.dn, resolved)
        return user

    def _allowed_groups(self, conn: ldap3.Connection, dn: str, resolved: str) -> list[str]:
        """The ``allowed_groups`` that ``group_filter`` finds the user in (a base search of each)."""
        s, found = self.settings, list[str]()
        query = s.group_filter.format(userdn=escape_filter_chars(dn), uid=escape_filter_chars(resolved))
        for group in s.allowed_groups:
            conn.search(group, query, search_scope=ldap3.BASE, attributes=list(s.group_attributes))
            if conn.entries:
                found.append(group)
        return found

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


def _json_values(values: object) -> list[Any]:
    """Attribute values as JSON-safe data for auth_state (bytes as text or hex, times as ISO 8601)."""
    out: list[Any] = []
    for v in values if isinstance(values, list) else []:
        if isinstance(v, bytes):
            try:
                out.append(v.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(v.hex())
        elif isinstance(v, dt.datetime | dt.date):
            out.append(v.isoformat())
        elif isinstance(v, str | int | float | bool) or v is None:
            out.append(v)
        else:
            out.append(str(v))
    return out


def _int(values: object) -> int | None:
    first = _first(values)
    try:
        return int(first) if first is not None else None
    except ValueError:
        return None
