"""Holds from an ICS calendar: no culling during a scheduled session.

The calendar format is shared with the warm-seat broker: one ``VEVENT`` per session, ``SUMMARY`` as
its name, ``DTSTART``/``DTEND`` (or ``DURATION``), optional ``RRULE`` and ``EXDATE``, and
``CATEGORIES`` listing the hub groups it concerns. An event without ``CATEGORIES`` holds every
server. The broker's own ``X-HUBKIT-*`` properties are ignored here, so one file serves both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx
import icalendar
from dateutil.rrule import rrulestr  # type: ignore[import-untyped]

from .exceptions import CalendarError
from .settings import CalendarSettings

__all__ = ["CalendarSource", "Hold", "parse_holds"]

log = logging.getLogger(__name__)

# How far recurrences are expanded around "now": sessions longer than this are not supported.
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


def _aware(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _categories(event: icalendar.cal.Component) -> frozenset[str]:
    raw = event.get("CATEGORIES")
    if raw is None:
        return frozenset()
    items = raw if isinstance(raw, list) else [raw]
    return frozenset(str(c).strip() for item in items for c in item.cats if str(c).strip())


def _exdates(event: icalendar.cal.Component) -> set[datetime]:
    """Cancelled occurrences (``EXDATE``) of a recurring event."""
    raw = event.get("EXDATE")
    items = raw if isinstance(raw, list) else [] if raw is None else [raw]
    return {_aware(d.dt) for item in items for d in item.dts}


def parse_holds(text: str | bytes, now: datetime, source: str = "calendar") -> list[Hold]:
    """Every occurrence of every event that overlaps ``now ± RECURRENCE_WINDOW``."""
    try:
        cal = icalendar.Calendar.from_ical(text)
    except ValueError as e:
        raise CalendarError(f"{source} is not a valid ICS calendar: {e}") from e
    holds: list[Hold] = []
    lo, hi = now - RECURRENCE_WINDOW, now + RECURRENCE_WINDOW
    for event in cal.walk("VEVENT"):
        if "DTSTART" not in event:
            raise CalendarError(f"{source}: event {event.get('SUMMARY', '?')!r} has no DTSTART")
        start = _aware(event.decoded("DTSTART"))
        if "DTEND" in event:
            length = _aware(event.decoded("DTEND")) - start
        elif "DURATION" in event:
            length = event.decoded("DURATION")
        else:
            length = timedelta(days=1) if not isinstance(event.decoded("DTSTART"), datetime) else timedelta()
        summary, groups = str(event.get("SUMMARY", "scheduled session")), _categories(event)
        starts = [start]
        if "RRULE" in event:
            raw = event["RRULE"].to_ical()
            rule = rrulestr(raw.decode() if isinstance(raw, bytes) else str(raw), dtstart=start)
            cancelled = _exdates(event)
            starts = [s for s in rule.between(lo - length, hi, inc=True) if s not in cancelled]
        holds.extend(Hold(summary, s, s + length, groups) for s in starts if s + length > lo and s < hi)
    return holds


class CalendarSource:
    """Reads the configured calendar, re-reading it every ``refresh_seconds``; keeps the last good copy."""

    def __init__(self, settings: CalendarSettings) -> None:
        self.settings = settings
        self._text: bytes | None = None
        self._loaded_at = float("-inf")
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return str(self.settings.path or self.settings.url)

    async def _read(self) -> bytes:
        if self.settings.path is not None:
            try:
                return self.settings.path.read_bytes()
            except OSError as e:
                raise CalendarError(f"cannot read calendar {self.settings.path}: {e.strerror}") from e
        assert self.settings.url is not None
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                r = await client.get(self.settings.url)
                r.raise_for_status()
                return r.content
        except httpx.HTTPError as e:
            raise CalendarError(f"cannot fetch calendar {self.settings.url}: {e}") from e

    async def holds(self, now: datetime) -> list[Hold] | None:
        """Current holds, or None when the calendar has never been read successfully."""
        if time.monotonic() - self._loaded_at >= self.settings.refresh_seconds:
            try:
                text = await self._read()
                parse_holds(text, now, self.name)  # validate before replacing the last good copy
                self._text, self._loaded_at, self.last_error = text, time.monotonic(), None
            except CalendarError as e:
                self.last_error = str(e)
                log.error("%s; %s", e, "keeping the last good copy" if self._text else "no copy yet")
        if self._text is None:
            return None
        return parse_holds(self._text, now, self.name)
