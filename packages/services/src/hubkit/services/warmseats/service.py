"""The broker's reconciler: keep placeholder Deployments at the plan, account consumed seats per hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hubkit.services.common.calendar import CalendarSource, sessions
from hubkit.services.common.kube_runtime import utcnow

from .builders import SIZE_LABEL, deployment_name, placeholder_deployment, size_of_pod_name
from .classes import class_events
from .exceptions import CalendarError, KubernetesError
from .metrics import WarmSeatsMetrics
from .planner import ClassEvent, PlanInput, SizePlan, SizePolicy, plan
from .settings import WarmSeatsSettings
from .sizing import size_for_pod
from .storage import WarmSeatsStore

__all__ = ["WarmSeatBroker"]

log = logging.getLogger("hubkit.services.warmseats")
HISTORY = timedelta(days=1)
CALENDAR_REFRESH = timedelta(minutes=5)
REAPPLY = timedelta(minutes=5)  # re-assert the Deployments even when the plan did not change


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class WarmSeatBroker:
    def __init__(
        self,
        settings: WarmSeatsSettings,
        store: WarmSeatsStore,
        metrics: WarmSeatsMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or WarmSeatsMetrics()
        self.clock = clock
        self.dirty = asyncio.Event()
        self.policies = [
            SizePolicy(s.name, s.baseline, s.maximum, s.image_pull_seconds, tuple(s.profiles))
            for s in settings.sizes
        ]
        self.arrival_log: dict[str, tuple[datetime, str, str]] = {}  # pod uid → (created, size, hub)
        self.seen_preemptions: set[str] = set()
        self.consumed: dict[tuple[str, str], int] = {}
        self.seat_takers: set[str] = set()
        self.events: tuple[ClassEvent, ...] = ()
        self.calendar_problems: tuple[str, ...] = ()
        self.calendar: CalendarSource | None = None
        if settings.calendar_path or settings.calendar_url:
            # A file is re-read on every pass (it is cheap, and an edit shows at once); a URL every 5 min.
            refresh = timedelta(0) if settings.calendar_path else CALENDAR_REFRESH
            self.calendar = CalendarSource(settings.calendar_path, settings.calendar_url, refresh)
        self.plans: dict[str, SizePlan] = {}
        self.applied: dict[str, int] = {}
        self.applied_at: datetime | None = None
        self.last_reconcile: datetime | None = None
        for cache in store.caches:
            cache.on_change = self.wake

    def wake(self) -> None:
        self.dirty.set()

    # --- inputs ----------------------------------------------------------------------------------

    async def _calendar(self, now: datetime) -> None:
        if self.calendar is None:
            return
        calendar = await self.calendar.calendar()
        if calendar is None:
            self.events = ()
            return
        s = self.settings
        read = sessions(calendar, now - HISTORY, now + HISTORY, ZoneInfo(s.calendar_timezone))
        parsed = class_events(read, timedelta(minutes=s.default_lead_minutes))
        for problem in set(parsed.problems) - set(self.calendar_problems):
            log.warning("calendar %s: %s", self.calendar.name, problem)
        self.events, self.calendar_problems = parsed.events, parsed.problems

    def _hub_of(self, pod: dict[str, Any]) -> str:
        meta = pod.get("metadata") or {}
        return str((meta.get("labels") or {}).get(self.settings.hub_label) or meta.get("namespace"))

    def _record_arrivals(self, now: datetime) -> None:
        for pod in self.store.user_pods.objects.values():
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid"))
            if uid in self.arrival_log or not meta.get("creationTimestamp"):
                continue
            size = size_for_pod(pod, self.settings.sizes, self.settings.size_label) or ""
            hub = self._hub_of(pod)
            self.arrival_log[uid] = (_time(meta["creationTimestamp"]), size, hub)
            self.metrics.arrivals.labels(hub, size or "none").inc()
        for uid, (created, _, _) in list(self.arrival_log.items()):
            if created < now - HISTORY:
                del self.arrival_log[uid]

    def _account_preemptions(self) -> None:
        users = {
            f"{(p.get('metadata') or {}).get('namespace')}/{(p.get('metadata') or {}).get('name')}": p
            for p in self.store.user_pods.objects.values()
        }
        for event in self.store.preemptions.objects.values():
            uid = str((event.get("metadata") or {}).get("uid"))
            if uid in self.seen_preemptions:
                continue
            self.seen_preemptions.add(uid)
            victim = (event.get("involvedObject") or event.get("regarding") or {}).get("name", "")
            size = size_of_pod_name(str(victim))
            related = event.get("related") or {}
            # One user pod consumes one seat. The scheduler may preempt twice for the same pod (when
            # another pod took the room it freed) or name one placeholder in two events: count the
            # preempting pod once, with the size of the first placeholder it displaced.
            preemptor = str(related.get("uid") or f"{related.get('namespace')}/{related.get('name')}")
            if size is None or not related or preemptor in self.seat_takers:
                continue
            self.seat_takers.add(preemptor)
            key = f"{related.get('namespace')}/{related.get('name')}"
            hub = self._hub_of(users[key]) if key in users else str(related.get("namespace"))
            self.consumed[(hub, size)] = self.consumed.get((hub, size), 0) + 1
            self.metrics.consumed.labels(hub, size).inc()
            log.info("hub %s took a %s warm seat (pod %s preempted placeholder %s)", hub, size, key, victim)

    # --- reconcile -------------------------------------------------------------------------------

    async def reconcile(self, now: datetime | None = None) -> dict[str, SizePlan]:
        """One pass at ``now`` (the test and the benchmark drive it; the loop passes the real time)."""
        now = now or self.clock()
        await self._calendar(now)
        self._record_arrivals(now)
        self._account_preemptions()
        arrivals: dict[str, list[datetime]] = {}
        for created, size_name, _ in self.arrival_log.values():
            if size_name:
                arrivals.setdefault(size_name, []).append(created)
        self.plans = plan(
            PlanInput(
                now=now,
                sizes=self.policies,
                events=self.events,
                arrivals=arrivals,
                node_ready_seconds=self.settings.node_ready_seconds,
                arrival_window=timedelta(seconds=self.settings.arrival_window_seconds),
                late_arrivals=timedelta(minutes=self.settings.late_arrival_minutes),
            )
        )
        if self.applied_at is None or abs(now - self.applied_at) > REAPPLY:
            self.applied = {}  # someone may have edited or deleted a Deployment
            self.applied_at = now
        for size in self.settings.sizes:
            count = self.plans[size.name].count
            if self.applied.get(size.name) != count:
                await self.store.apply_deployment(placeholder_deployment(self.settings, size, count))
                log.info(
                    "warm seats %s: %s -> %d (%s)",
                    size.name,
                    self.applied.get(size.name),
                    count,
                    _why(self.plans[size.name]),
                )
                self.applied[size.name] = count
        self.last_reconcile = now
        self._export()
        return self.plans

    async def remove_unconfigured(self) -> None:
        """Delete Deployments of sizes that are no longer configured."""
        wanted = {deployment_name(s.name) for s in self.settings.sizes}
        for deployment in await self.store.deployments():
            name = deployment["metadata"]["name"]
            if name not in wanted:
                log.info("removing placeholders of the unconfigured size %s", name)
                await self.store.delete_deployment(name)

    def placeholder_states(self) -> dict[str, dict[str, int]]:
        states = {s.name: {"running": 0, "pending": 0} for s in self.settings.sizes}
        for pod in self.store.placeholders.objects.values():
            meta = pod.get("metadata") or {}
            size = (meta.get("labels") or {}).get(SIZE_LABEL)
            if size not in states or meta.get("deletionTimestamp"):
                continue
            bound = bool((pod.get("spec") or {}).get("nodeName"))
            states[size]["running" if bound else "pending"] += 1
        return states

    def _export(self) -> None:
        m = self.metrics
        for name, p in self.plans.items():
            m.planned.labels(name).set(p.count)
            m.term.labels(name, "baseline").set(p.baseline)
            m.term.labels(name, "scheduled").set(p.scheduled)
            m.term.labels(name, "recent").set(p.recent)
        for name, states in self.placeholder_states().items():
            for state, count in states.items():
                m.placeholders.labels(name, state).set(count)
        m.calendar_problems.set(len(self.calendar_problems))

    # --- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        now = self.last_reconcile or self.clock()
        states = self.placeholder_states()
        return {
            "last_reconcile": self.last_reconcile.isoformat() if self.last_reconcile else None,
            "sizes": [
                {
                    "size": name,
                    "planned": p.count,
                    "terms": {"baseline": p.baseline, "scheduled": p.scheduled, "recent": p.recent},
                    "events": list(p.events),
                    **states.get(name, {}),
                }
                for name, p in self.plans.items()
            ],
            "upcoming": [
                {
                    "summary": e.summary,
                    "start": e.start.isoformat(),
                    "end": e.end.isoformat(),
                    "students": e.students,
                }
                for e in self.events
                if e.end > now
            ][:20],
            "calendar_problems": list(self.calendar_problems),
            "calendar_error": self.calendar.last_error if self.calendar else None,
            "consumed": [{"hub": h, "size": s, "seats": n} for (h, s), n in sorted(self.consumed.items())],
        }

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy once reconciled."""
        if self.last_reconcile is None:
            return False, {"message": "not reconciled yet", "last_reconcile": None}
        return True, {"message": "ok", "last_reconcile": self.last_reconcile.isoformat()}

    # --- loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        await self.store.ensure_priority_class()
        tasks = [asyncio.create_task(c.run()) for c in self.store.caches]
        try:
            await self.store.synced()
            await self.remove_unconfigured()
            while True:
                self.dirty.clear()
                try:
                    await self.reconcile()
                    self.metrics.reconciles.labels("ok").inc()
                except (KubernetesError, CalendarError) as e:
                    self.metrics.reconciles.labels("error").inc()
                    log.error("reconcile failed: %s", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.dirty.wait(), self.settings.reconcile_seconds)
                await asyncio.sleep(0.5)  # coalesce bursts of watch events
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _why(p: SizePlan) -> str:
    parts = [f"baseline {p.baseline}", f"scheduled {p.scheduled}", f"recent {p.recent}"]
    if p.events:
        parts.append("events: " + ", ".join(p.events))
    return "; ".join(parts)
