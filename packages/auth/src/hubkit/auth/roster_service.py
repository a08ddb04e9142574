"""The LTI 1.3 authenticator's roster sync: on instructor launches and on a schedule, with backoff.

Reads the roster (:mod:`hubkit.auth.nrps`) and applies it (:mod:`hubkit.auth.roster_sync`); a platform
error is logged with the course and retried later, and leaves the hub's groups as they were.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from tornado.ioloop import PeriodicCallback

from .exceptions import HubKitAuthError
from .lti13_token import CONTEXT, ROLES
from .lti_launch import LaunchLimits, check_username, role_kind
from .nrps import NRPS_CLAIM, NRPS_SCOPE, Member, ServiceAccess, access_token, read_roster, roster_groups
from .roster_sync import CourseService, RosterChange, RosterSchedule, apply_roster

TICK_SECONDS = 15.0  # how often the schedule looks for due courses


class RosterService:
    def __init__(self, authenticator: Any) -> None:
        self.auth = authenticator
        self.schedule = RosterSchedule(
            interval=float(authenticator.roster_sync_interval or 3600),
            min_backoff=float(authenticator.roster_retry_seconds),
            max_backoff=float(authenticator.roster_sync_interval or 3600),
        )
        self._db: Any = None
        self._timer: PeriodicCallback | None = None
        self._lock = asyncio.Lock()

    def start(self, app: Any) -> None:
        """Remember the hub's database and start the schedule (called while the hub builds handlers)."""
        self._db = getattr(app, "db", None)
        if self._timer is None and self._db is not None and int(self.auth.roster_sync_interval) > 0:
            tick = min(TICK_SECONDS, self.schedule.interval, self.schedule.min_backoff)
            self._timer = PeriodicCallback(self.sync_due, tick * 1000)
            self._timer.start()

    def course_of(self, claims: dict[str, Any]) -> CourseService | None:
        """The roster service of a launch: only an instructor's, only with NRPS and a usable platform."""
        service = claims.get(NRPS_CLAIM) or {}
        url = service.get("context_memberships_url") if isinstance(service, dict) else None
        context = (claims.get(CONTEXT) or {}).get("id")
        if not isinstance(url, str) or not url or not context:
            return None
        if "instructor" not in {role_kind(str(r)) for r in claims.get(ROLES) or []}:
            return None
        platform = self.auth.registry().get(str(claims["iss"]))
        if platform is None or not platform.token_url or self.auth.tool_key() is None:
            return None
        return CourseService(platform.issuer, str(claims["aud"]), str(context), url)

    async def after_launch(self, db: Any, claims: dict[str, Any]) -> None:
        course = self.course_of(claims)
        if course is None:
            return
        self.schedule.remember(course)
        await self.sync_logged(db, course)

    async def sync_due(self) -> None:
        if self._db is None:
            return
        for course in self.schedule.due():
            await self.sync_logged(self._db, course)

    async def sync_logged(self, db: Any, course: CourseService) -> RosterChange | None:
        """Sync one course; a failure is logged (with the course) and scheduled for a retry."""
        where = f"iss={course.issuer!r}, context={course.context_id!r}"
        try:
            change = await self.sync(db, course)
        except HubKitAuthError as e:
            wait = self.schedule.failed(course)
            self.auth.log.warning(
                "Roster sync failed, nothing changed; retry in %.0f s: %s [%s]", wait, e, where
            )
            return None
        self.schedule.succeeded(course)
        self.auth.log.info(
            "Roster sync: %d user(s) created, %d membership(s) added, %d removed [%s]",
            len(change.created),
            len(change.added),
            len(change.removed),
            where,
        )
        return change

    async def sync(self, db: Any, course: CourseService) -> RosterChange:
        platform = self.auth.registry()[course.issuer]
        key = self.auth.tool_key()
        access = ServiceAccess(course.client_id, platform.token_url, key)
        async with httpx.AsyncClient(timeout=access.timeout) as http:
            token = await access_token(http, access, [NRPS_SCOPE])
            members = await read_roster(http, course.memberships_url, token)
        desired = roster_groups(course.context_id, members, self.username_of)
        async with self._lock:  # one writer at a time: a launch and the schedule may meet
            return apply_roster(db, desired)

    def username_of(self, member: Member) -> str | None:
        """The hub name a member's launch would get (``username_key`` ``sub`` or ``email``), else None."""
        key = self.auth.username_key or "sub"
        raw = {"sub": member.user_id, "email": member.email}.get(key)
        if not raw:
            return None
        try:
            limits: LaunchLimits = self.auth.launch_limits()
            name = str(self.auth.normalize_username(check_username(raw, limits)))
        except HubKitAuthError:
            return None
        return str(self.auth.hubkit_username_prefix) + name
