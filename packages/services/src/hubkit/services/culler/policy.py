"""Pure culling decisions: from a user model (as the hub API returns it), the time and the holds.

Nothing here does I/O, so every policy can be reasoned about (and tested) on plain dictionaries.
Policy names (in logs, metrics and dry-run output): ``idle:<rule>`` / ``idle:default``, ``max-age``,
``inactive-user``; a server kept by a calendar event is reported as ``hold``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .holds import Hold
from .settings import CullerSettings

__all__ = ["Decision", "decide_server", "decide_user", "format_td", "parse_time"]


@dataclass(frozen=True)
class Decision:
    """What to do with one server (``server`` is its name, "" for the default) or one user."""

    user: str
    server: str | None
    cull: bool
    policy: str
    reason: str

    @property
    def target(self) -> str:
        return self.user if self.server is None else f"{self.user}/{self.server}"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def format_td(td: timedelta) -> str:
    seconds = max(0, int(td.total_seconds()))
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{h:02}:{m:02}:{s:02}"


def _groups(user: dict[str, Any]) -> frozenset[str]:
    return frozenset(str(g) for g in user.get("groups") or [])


def _hold(holds: list[Hold], now: datetime, groups: frozenset[str]) -> Hold | None:
    return next((h for h in holds if h.applies(now, groups)), None)


def _idle_limit(settings: CullerSettings, profile: str | None, groups: frozenset[str]) -> tuple[str, float]:
    for rule in settings.idle_rules:
        if rule.matches(profile, groups):
            return f"idle:{rule.name}", rule.timeout_seconds
    return "idle:default", settings.idle_timeout_seconds


def decide_server(
    user: dict[str, Any],
    name: str,
    server: dict[str, Any],
    now: datetime,
    settings: CullerSettings,
    holds: list[Hold],
) -> Decision:
    """Cull ``user``'s server ``name``? Pending or not-ready servers are never culled."""
    uname = str(user["name"])

    def keep(policy: str, reason: str) -> Decision:
        return Decision(uname, name, False, policy, reason)

    if server.get("pending"):
        return keep("pending", f"{server['pending']} pending")
    if not server.get("ready"):
        return keep("not-ready", "not ready")
    if name and not settings.cull_named_servers:
        return keep("named-servers", "named servers are not culled")
    if not name and not settings.cull_default_servers:
        return keep("default-servers", "default servers are not culled")
    groups = _groups(user)
    hold = _hold(holds, now, groups)
    if hold is not None:
        return keep("hold", f"held by scheduled session {hold.summary!r} until {hold.end.isoformat()}")
    started = parse_time(server.get("started"))
    last = parse_time(server.get("last_activity")) or started
    options = server.get("user_options") or {}
    profile = options.get("profile") if isinstance(options, dict) else None
    policy, limit = _idle_limit(settings, str(profile) if profile is not None else None, groups)
    if last is not None and (now - last).total_seconds() >= limit:
        idle = format_td(now - last)
        return Decision(
            uname, name, True, policy, f"idle for {idle} (limit {format_td(timedelta(seconds=limit))})"
        )
    if settings.max_age_seconds and started is not None:
        age = now - started
        if age.total_seconds() >= settings.max_age_seconds:
            limit_td = format_td(timedelta(seconds=settings.max_age_seconds))
            return Decision(uname, name, True, "max-age", f"running for {format_td(age)} (limit {limit_td})")
    return keep(policy, "active" if last is None else f"idle for {format_td(now - last)}")


def decide_user(user: dict[str, Any], now: datetime, settings: CullerSettings, holds: list[Hold]) -> Decision:
    """Delete ``user`` (who has no running server)? Admins only with ``users.include_admins``."""
    uname = str(user["name"])
    days = settings.users.inactive_days
    if days is None:
        return Decision(uname, None, False, "inactive-user", "user culling is off")
    # Without the admin flag (scope read:users:name missing) assume the worst: never delete.
    if user.get("admin", True) and not settings.users.include_admins:
        return Decision(uname, None, False, "inactive-user", "admin users are not culled")
    if any(s.get("pending") or s.get("ready") for s in (user.get("servers") or {}).values()):
        return Decision(uname, None, False, "inactive-user", "has a server")
    hold = _hold(holds, now, _groups(user))
    if hold is not None:
        return Decision(uname, None, False, "hold", f"held by scheduled session {hold.summary!r}")
    last = parse_time(user.get("last_activity")) or parse_time(user.get("created"))
    if last is None or (now - last).total_seconds() < days * 86400:
        return Decision(uname, None, False, "inactive-user", "recently active")
    return Decision(
        uname, None, True, "inactive-user", f"inactive for {format_td(now - last)} (limit {days:g} days)"
    )
