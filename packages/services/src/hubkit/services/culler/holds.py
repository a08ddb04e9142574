"""Holds: no culling during a scheduled session of the hold calendar (see :mod:`..common.calendar`).

An event's ``CATEGORIES`` list the hub groups it concerns; an event without ``CATEGORIES`` holds every
server. The warm-seat broker's ``X-HUBKIT-*`` properties are ignored here, so one file serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hubkit.services.common.calendar import parse_ics, sessions

if TYPE_CHECKING:
    import icalendar

__all__ = ["RECURRENCE_WINDOW", "Hold", "holds_at", "parse_holds"]

# Sessions are looked up this far around "now": a session longer than this is not supported.
RECURRENCE_WINDOW = timedelta(days=2)


@dataclass(frozen=True)
class Hold:
    """One occurrence of a scheduled session."""

    summary: str
    start: datetime
    end: datetime
    groups: frozenset[str]

    def applies(self, now: datetime, user_groups: frozenset[str]) -> bool:
        if not self.start <= now < self.end:
            return False
        return not self.groups or bool(self.groups & user_groups)


def holds_at(calendar: icalendar.Calendar, now: datetime) -> tuple[list[Hold], tuple[str, ...]]:
    """The holds around ``now`` (times without a zone are UTC), and one sentence per skipped event."""
    read = sessions(calendar, now - RECURRENCE_WINDOW, now + RECURRENCE_WINDOW)
    holds = [Hold(s.summary, s.start, s.end, s.categories) for s in read.sessions]
    return holds, read.problems


def parse_holds(text: str | bytes, now: datetime, source: str = "the calendar") -> list[Hold]:
    """The holds around ``now`` in ICS ``text`` (skipped events are left out)."""
    return holds_at(parse_ics(text, source), now)[0]
