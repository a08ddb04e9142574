"""Sessions from an ICS calendar, shared by the culler (holds) and the warm-seat broker (class sessions).

One ``VEVENT`` per session or series: ``SUMMARY``, ``DTSTART`` and ``DTEND`` (or ``DURATION``), and for a
series ``RRULE``/``RDATE``/``EXDATE`` (with times) plus overriding ``VEVENT``s with a ``RECURRENCE-ID`` (a
moved or changed session). Expanding all that is `recurring-ical-events`' job; this module adds what
HubKit needs around it:

- floating times (no zone) are read in a given zone; all-day events become midnight-to-midnight there;
- an event HubKit cannot read (no ``DTSTART``, ending before it starts) is skipped and reported as one
  sentence, and never hides the other events;
- a moved session that omits a property of its series (say ``CATEGORIES`` or ``X-HUBKIT-STUDENTS``)
  inherits the series' value: calendar apps differ in what they copy into an override;
- :class:`CalendarSource` reads a file or URL, re-reads it after ``refresh``, and keeps the last copy that
  parsed when a later read fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from .exceptions import CalendarError

if TYPE_CHECKING:
    import icalendar

# icalendar and recurring-ical-events are imported where they are used: a service without a calendar
# (most culler deployments) starts without loading them.

__all__ = ["CalendarRead", "CalendarSource", "Session", "parse_ics", "sessions"]

log = logging.getLogger(__name__)

# How far outside the asked window events are expanded before floating times get their zone (no zone
# is more than 14 hours from UTC).
_FLOATING_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Session:
    """One occurrence of an event: a single session, or one of a series (possibly moved)."""

    uid: str
    summary: str
    start: datetime
    end: datetime
    all_day: bool
    categories: frozenset[str]
    properties: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    description: str = ""

    def property(self, name: str) -> str | None:
        """An ``X-`` (or other text) property of this occurrence, else of its series."""
        return self.properties.get(name.upper())


@dataclass(frozen=True)
class CalendarRead:
    """The sessions overlapping the asked window (by start time), and one sentence per skipped event."""

    sessions: tuple[Session, ...]
    problems: tuple[str, ...]


def parse_ics(text: str | bytes, source: str = "the calendar") -> icalendar.Calendar:
    """Parse ICS text; :class:`CalendarError` when it is not iCalendar data at all."""
    import icalendar

    try:
        return icalendar.Calendar.from_ical(text)
    except ValueError as e:
        raise CalendarError(f"{source} is not a valid ICS calendar (not valid iCalendar data: {e})") from e


def _label(event: Any) -> tuple[str, str]:
    summary = str(event.get("SUMMARY", "(no title)"))[:200]
    return summary, str(event.get("UID", summary))


def _check(event: Any) -> str | None:
    """Why HubKit cannot use this event (its master or an override), or None."""
    if event.get("DTSTART") is None:
        return "it has no DTSTART"
    start = event["DTSTART"].dt
    if event.get("DTEND") is not None:
        end = event["DTEND"].dt
        if type(end) is not type(start) and not (isinstance(end, datetime) and isinstance(start, datetime)):
            return "DTSTART and DTEND must both be dates or both be times"
        if isinstance(start, datetime) and (start.tzinfo is None) != (end.tzinfo is None):
            return "DTSTART and DTEND must both have a time zone or both have none"
        if end < start:
            return "it ends before it starts"
    elif event.get("DURATION") is not None and event["DURATION"].dt < timedelta(0):
        return "it ends before it starts"
    return None


def _aware(value: date | datetime, tz: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=tz)
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _categories(event: Any) -> frozenset[str]:
    raw = event.get("CATEGORIES")
    if raw is None:
        return frozenset()
    items = raw if isinstance(raw, list) else [raw]
    return frozenset(str(c).strip() for item in items for c in item.cats if str(c).strip())


def _text_properties(event: Any) -> dict[str, str]:
    return {str(k).upper(): str(v) for k, v in event.items() if str(k).upper().startswith("X-")}


def _session(occurrence: Any, series: Any | None, tz: tzinfo) -> Session:
    def get(name: str) -> Any:
        value = occurrence.get(name)
        return series.get(name) if value is None and series is not None else value

    summary, uid = _label(occurrence)
    if occurrence.get("SUMMARY") is None and series is not None:
        summary = _label(series)[0]
    start_value = occurrence["DTSTART"].dt
    end_value = occurrence["DTEND"].dt if occurrence.get("DTEND") is not None else start_value
    properties = _text_properties(series) if series is not None else {}
    properties.update(_text_properties(occurrence))
    categories = _categories(occurrence) if occurrence.get("CATEGORIES") is not None else None
    if categories is None:
        categories = _categories(series) if series is not None else frozenset()
    return Session(
        uid=uid,
        summary=summary,
        start=_aware(start_value, tz),
        end=_aware(end_value, tz),
        all_day=not isinstance(start_value, datetime),
        categories=categories,
        properties=properties,
        description=str(get("DESCRIPTION") or ""),
    )


def _without(calendar: icalendar.Calendar, skipped: set[str]) -> icalendar.Calendar:
    import icalendar

    kept = icalendar.Calendar()
    for key, value in calendar.items():
        kept.add(key, value)
    for component in calendar.subcomponents:
        if component.name == "VEVENT" and _label(component)[1] in skipped:
            continue
        kept.add_component(component)
    return kept


def sessions(
    calendar: icalendar.Calendar, since: datetime, until: datetime, tz: tzinfo = UTC
) -> CalendarRead:
    """Every session overlapping ``[since, until)``, sorted by start; floating times read in ``tz``."""
    import recurring_ical_events  # type: ignore[import-untyped]

    problems: dict[str, str] = {}
    events: list[Any] = list(calendar.walk("VEVENT"))  # icalendar's property unions are too wide to narrow
    for event in events:
        reason = _check(event)
        if reason is not None:
            summary, uid = _label(event)
            problems.setdefault(uid, f"event {summary!r} ({uid}) skipped: {reason}")
    series = {
        _label(e)[1]: e for e in events if e.get("RECURRENCE-ID") is None and _label(e)[1] not in problems
    }
    usable = _without(calendar, set(problems)) if problems else calendar
    try:
        found: Iterable[Any] = recurring_ical_events.of(usable).between(
            since - _FLOATING_MARGIN, until + _FLOATING_MARGIN
        )
        occurrences = [_session(o, series.get(_label(o)[1]), tz) for o in found]
    except (ValueError, TypeError) as e:  # a rule recurring-ical-events cannot expand (a broken RRULE)
        raise CalendarError(f"the calendar cannot be expanded: {e}") from e
    overlapping = [s for s in occurrences if s.start < until and s.end > since]
    overlapping.sort(key=lambda s: (s.start, s.uid))
    return CalendarRead(tuple(overlapping), tuple(problems.values()))


class CalendarSource:
    """The calendar at ``path`` or ``url``, re-read when older than ``refresh``; keeps the last good copy."""

    def __init__(self, path: Path | str | None, url: str | None, refresh: timedelta) -> None:
        if (path is None) == (url is None):
            raise ValueError("a calendar needs exactly one of path or url")
        self.path = Path(path) if path is not None else None
        self.url = url
        self.refresh = refresh
        self._calendar: icalendar.Calendar | None = None
        self._loaded_at = float("-inf")
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return str(self.path or self.url)

    async def _read(self) -> bytes:
        if self.path is not None:
            try:
                return await asyncio.to_thread(self.path.read_bytes)
            except OSError as e:
                raise CalendarError(f"cannot read the calendar {self.path}: {e.strerror}") from e
        assert self.url is not None
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                return response.content
        except httpx.HTTPError as e:
            raise CalendarError(f"cannot fetch the calendar {self.url}: {e}") from e

    async def calendar(self) -> icalendar.Calendar | None:
        """The current calendar, or None when it has never been read successfully."""
        if time.monotonic() - self._loaded_at >= self.refresh.total_seconds():
            try:
                parsed = parse_ics(await self._read(), f"the calendar {self.name}")
            except CalendarError as e:
                if self.last_error != str(e):  # once per change, not once per sweep
                    kept = "keeping the last good copy" if self._calendar is not None else "no copy yet"
                    log.error("%s; %s", e, kept)
                self.last_error = str(e)
            else:
                self._calendar, self._loaded_at, self.last_error = parsed, time.monotonic(), None
        return self._calendar
