"""The capacity plan: how many warm seats (placeholder pods) of each size to keep right now.

A pure function of its inputs, so it is tested directly and driven by ``bench/class_start.py``.

    count(size) = min(maximum, max(baseline, scheduled, recent))

- ``baseline``: always kept (evenings, weekends).
- ``scheduled``: for every calendar event whose window ``[start - lead, min(end, start + late_arrivals))``
  contains ``now``, the students it expects times the event's profile share of this size, minus the users
  of this size that already arrived since the earliest such window opened (their seats are taken; keeping
  more would only add nodes nobody needs). Students later than ``late_arrivals`` are left to ``recent``.
- ``recent``: the arrival rate of this size over the last ``arrival_window`` times the time a new seat takes
  to appear from nothing (node-ready time + image-pull time): what arrives while the autoscaler catches up.
  Arrivals the calendar predicted (up to an active event's expected students) are not counted here: the
  scheduled term already holds their seats, and counting them twice would add nodes for a burst that is over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["ClassEvent", "PlanInput", "SizePlan", "SizePolicy", "plan", "size_shares"]


@dataclass(frozen=True)
class SizePolicy:
    name: str
    baseline: int = 0
    maximum: int = 1000
    image_pull_seconds: float = 0.0  # pull time on a fresh node (0 when the prepuller warms new nodes first)
    profiles: tuple[str, ...] = ()  # profile slugs whose users take a seat of this size


@dataclass(frozen=True)
class ClassEvent:
    uid: str
    summary: str
    start: datetime
    end: datetime
    students: int
    mix: Mapping[str, float] = field(default_factory=dict)  # profile slug or size name → share
    lead: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class PlanInput:
    now: datetime
    sizes: Sequence[SizePolicy]
    events: Sequence[ClassEvent]
    arrivals: Mapping[str, Sequence[datetime]]  # size → creation times of recent user pods
    node_ready_seconds: float = 240.0
    arrival_window: timedelta = timedelta(minutes=10)
    late_arrivals: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class SizePlan:
    size: str
    count: int
    baseline: int
    scheduled: int
    recent: int
    events: tuple[str, ...] = ()  # summaries of the events that contributed


def size_shares(event: ClassEvent, sizes: Sequence[SizePolicy]) -> dict[str, float]:
    """The event's mix per size; an event without a mix puts everyone on the first size."""
    if not sizes:
        return {}
    shares = {s.name: 0.0 for s in sizes}
    if not event.mix:
        shares[sizes[0].name] = 1.0
        return shares
    for key, share in event.mix.items():
        for s in sizes:
            if key == s.name or key in s.profiles:
                shares[s.name] += share
                break
    return shares


def _demand(students: int, share: float) -> int:
    # A tiny tolerance keeps 30 x 0.1 at 3, not 4, despite floating point.
    return math.ceil(students * share - 1e-9) if share > 0 else 0


@dataclass(frozen=True)
class _Window:
    opens: datetime
    closes: datetime
    demand: int
    summary: str


def _windows(inp: PlanInput, size: str) -> list[_Window]:
    """Each event's arrival window for one size: ``[start - lead, min(end, start + late_arrivals))``."""
    windows = []
    for e in inp.events:
        demand = _demand(e.students, size_shares(e, inp.sizes)[size])
        if demand:
            closes = min(e.end, e.start + inp.late_arrivals)
            windows.append(_Window(e.start - e.lead, closes, demand, e.summary))
    return windows


def _predicted_recent(windows: Sequence[_Window], arrivals: Sequence[datetime], since: datetime) -> int:
    """Recent arrivals the calendar predicted: within a window, the first ``demand`` arrivals are expected."""
    predicted = 0
    for w in windows:
        inside = sum(1 for t in arrivals if w.opens <= t < w.closes)
        recent = sum(1 for t in arrivals if w.opens <= t < w.closes and t > since)
        predicted += min(recent, max(0, min(w.demand, inside) - (inside - recent)))
    return predicted


def plan(inp: PlanInput) -> dict[str, SizePlan]:
    recent_since = inp.now - inp.arrival_window
    window = inp.arrival_window.total_seconds()
    plans: dict[str, SizePlan] = {}
    for size in inp.sizes:
        arrivals = [t for t in inp.arrivals.get(size.name, ()) if t <= inp.now]
        # Only windows still open, or closed within the arrival window, can matter now.
        windows = [w for w in _windows(inp, size.name) if w.opens <= inp.now and w.closes > recent_since]
        active = [w for w in windows if w.opens <= inp.now < w.closes]
        opened = min((w.opens for w in active), default=inp.now)
        demand = sum(w.demand for w in active)
        arrived = sum(1 for t in arrivals if opened <= t)
        scheduled = max(0, demand - arrived)
        recent_count = sum(1 for t in arrivals if t > recent_since)
        recent_count = max(0, recent_count - _predicted_recent(windows, arrivals, recent_since))
        rate = recent_count / window if window > 0 else 0.0
        recent = math.ceil(rate * (inp.node_ready_seconds + size.image_pull_seconds) - 1e-9)
        count = min(size.maximum, max(size.baseline, scheduled, recent))
        names = tuple(w.summary for w in active)
        plans[size.name] = SizePlan(size.name, count, size.baseline, scheduled, recent, names)
    return plans
