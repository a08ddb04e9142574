"""The culler's loop: a sweep every ``interval_seconds``; one sweep lists servers, decides, culls.

Sweeps never overlap.
Listing comes first, and culling only starts once the list is complete: the hub pages ``?state=ready``
by offset, so stopping servers while paging would shift later pages and silently skip users. Pages
are fetched concurrently (after the first one gives the total) and decided as they arrive; the culls
then run concurrently, bounded by the hub client. A failing cull is logged and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hubkit.services.common.calendar import CalendarSource
from hubkit.services.common.exceptions import HubAPIError
from hubkit.services.common.hubapi import HubClient

from .holds import Hold, holds_at
from .metrics import CullerMetrics
from .policy import Decision, decide_server, decide_user
from .settings import CullerSettings

__all__ = ["Culler", "SweepReport"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ReportCallback = Callable[["SweepReport"], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class SweepReport:
    """What one sweep did (or, in dry run, would have done)."""

    started: datetime
    dry_run: bool
    checked: int = 0
    held: int = 0
    culled: list[Decision] = field(default_factory=list)
    failed: list[tuple[Decision, str]] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None


class Culler:
    """Runs sweeps against the hub through ``client``; ``clock`` is injectable for tests."""

    def __init__(
        self,
        settings: CullerSettings,
        client: HubClient,
        metrics: CullerMetrics,
        calendar: CalendarSource | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self.calendar = calendar
        self.clock = clock
        self._lock = asyncio.Lock()
        self.last_report: SweepReport | None = None
        self.calendar_problems: tuple[str, ...] = ()

    async def run(self, once: bool = False, on_report: ReportCallback | None = None) -> int:
        """Sweep every ``interval_seconds`` until cancelled; with ``once``, sweep once and return 0, or 1
        when the sweep could not run (the hub or the calendar unreachable)."""
        while True:
            report = await self.sweep()
            if on_report is not None:
                on_report(report)
            if once:
                return 0 if report.skipped is None else 1
            await asyncio.sleep(self.settings.interval_seconds)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy until a sweep could not run; the body says what the last sweep did."""
        r = self.last_report
        body: dict[str, Any] = {"dry_run": self.settings.dry_run}
        if r is not None:
            body |= {
                "last_sweep": r.started.isoformat(),
                "culled": len(r.culled),
                "failed": len(r.failed),
                "error": r.skipped,
            }
        return r is None or r.skipped is None, body

    def status(self) -> dict[str, Any]:
        """The last sweep in detail: what was (or would be) culled and why, what failed."""
        r = self.last_report
        body: dict[str, Any] = {
            "dry_run": self.settings.dry_run,
            "interval_seconds": self.settings.interval_seconds,
            "calendar": self.calendar.name if self.calendar else None,
            "calendar_error": self.calendar.last_error if self.calendar else None,
            "calendar_problems": list(self.calendar_problems),
            "last_sweep": None,
        }
        if r is not None:
            body["last_sweep"] = {
                "started": r.started.isoformat(),
                "seconds": round(r.seconds, 3),
                "checked": r.checked,
                "held": r.held,
                "skipped": r.skipped,
                "culled": [{"target": d.target, "policy": d.policy, "reason": d.reason} for d in r.culled],
                "failed": [{"target": d.target, "error": e} for d, e in r.failed],
            }
        return body

    async def sweep(self) -> SweepReport:
        """Run one sweep; if one is already running, return at once with ``skipped`` set."""
        now = self.clock()
        if self._lock.locked():
            log.warning("previous sweep still running: skipping this one")
            self.metrics.sweeps.labels("skipped").inc()
            return SweepReport(now, self.settings.dry_run, skipped="previous sweep still running")
        async with self._lock:
            t0 = time.monotonic()
            report = SweepReport(now, self.settings.dry_run)
            try:
                await self._sweep(now, report)
            except HubAPIError as e:
                log.error("sweep failed: %s", e)
                self.metrics.sweeps.labels("failed").inc()
                report.skipped = str(e)
            else:
                self.metrics.sweeps.labels("ok").inc()
            report.seconds = time.monotonic() - t0
            self.metrics.sweep_seconds.observe(report.seconds)
            self.metrics.last_sweep.set_to_current_time()
            self.last_report = report
            log.info(
                "sweep %s: %d servers checked, %d %s, %d held, %d failed in %.2f s",
                "(dry run)" if report.dry_run else "done",
                report.checked,
                len(report.culled),
                "would be culled" if report.dry_run else "culled",
                report.held,
                len(report.failed),
                report.seconds,
            )
            return report

    async def _holds(self, now: datetime) -> list[Hold] | None:
        if self.calendar is None:
            return []
        calendar = await self.calendar.calendar()
        if calendar is None:
            return None
        holds, problems = holds_at(calendar, now)
        for problem in sorted(set(problems) - set(self.calendar_problems)):
            log.warning("hold calendar %s: %s", self.calendar.name, problem)
        self.calendar_problems = problems
        return holds

    async def _sweep(self, now: datetime, report: SweepReport) -> None:
        holds = await self._holds(now)
        if holds is None:
            report.skipped = f"calendar {self.calendar.name if self.calendar else ''} was never read"
            log.error("not culling: the hold calendar could not be read yet (%s)", report.skipped)
            return
        decisions: list[Decision] = []
        async for page in self.client.pages("/users", {"state": "ready"}, self.settings.page_size):
            for user in page:
                for name, server in (user.get("servers") or {}).items():
                    report.checked += 1
                    try:
                        decision = decide_server(user, name, server, now, self.settings, holds)
                    except (ValueError, TypeError, AttributeError) as e:
                        self._unjudged(Decision(str(user.get("name")), name, False, "invalid", ""), e, report)
                        continue
                    report.held += decision.policy == "hold"
                    if decision.cull:
                        decisions.append(decision)
        if self.settings.users.inactive_days is not None:
            async for page in self.client.pages("/users", {"state": "inactive"}, self.settings.page_size):
                for user in page:
                    try:
                        decision = decide_user(user, now, self.settings, holds)
                    except (ValueError, TypeError, AttributeError) as e:
                        self._unjudged(Decision(str(user.get("name")), None, False, "invalid", ""), e, report)
                        continue
                    if decision.cull:
                        decisions.append(decision)
        self.metrics.checked.inc(report.checked)
        self.metrics.holds.set(report.held)
        await asyncio.gather(*(self._act(d, report) for d in decisions))

    def _unjudged(self, decision: Decision, error: Exception, report: SweepReport) -> None:
        """The hub's model of this user or server could not be understood: skip it, say so, go on."""
        kind = "user" if decision.server is None else "server"
        message = f"cannot judge {kind} {decision.target}: {error}"
        report.failed.append((decision, message))
        self.metrics.failures.labels(kind).inc()
        log.error("%s (the hub's model of it is not understood; skipping it)", message)

    async def _act(self, decision: Decision, report: SweepReport) -> None:
        kind = "user" if decision.server is None else "server"
        dry = self.settings.dry_run
        if dry:
            report.culled.append(decision)
            self.metrics.culls.labels(kind, decision.policy, "true").inc()
            log.info(
                "would cull %s %s: %s [policy %s]", kind, decision.target, decision.reason, decision.policy
            )
            return
        method, path, body = _request_for(decision, self.settings.remove_named_servers)
        try:
            await self.client.request(method, path, json=body)
        except HubAPIError as e:
            report.failed.append((decision, str(e)))
            self.metrics.failures.labels(kind).inc()
            log.error("could not cull %s %s [policy %s]: %s", kind, decision.target, decision.policy, e)
            return
        report.culled.append(decision)
        self.metrics.culls.labels(kind, decision.policy, "false").inc()
        log.info("culled %s %s: %s [policy %s]", kind, decision.target, decision.reason, decision.policy)


def _request_for(decision: Decision, remove_named: bool) -> tuple[str, str, Any]:
    user = quote(decision.user, safe="")
    if decision.server is None:
        return "DELETE", f"/users/{user}", None
    if decision.server == "":
        return "DELETE", f"/users/{user}/server", None
    path = f"/users/{user}/servers/{quote(decision.server, safe='')}"
    return "DELETE", path, {"remove": True} if remove_named else None
