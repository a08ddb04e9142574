"""Class sessions from an ICS calendar: start, end, expected students, profile mix and lead time.

Each VEVENT (recurring ones through RRULE/EXDATE, as a semester timetable is written) may carry:

- ``X-HUBKIT-STUDENTS:120`` — expected students (required: events without it are not classes);
- ``X-HUBKIT-PROFILES:cpu=0.7,gpu=0.3`` — share of students per profile slug or seat-size name;
- ``X-HUBKIT-LEAD:PT20M`` (or minutes, ``20``) — how long before the start the seats must be warm.

Calendar apps that cannot set ``X-`` properties can put the same as ``hubkit-students: 120`` lines
(``hubkit-profiles:``, ``hubkit-lead:``) in the DESCRIPTION. A bad event is skipped and reported; it never
hides the other events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrulestr  # type: ignore[import-untyped]  # (no stubs in the lock)
from icalendar import Calendar

from .exceptions import CalendarError
from .planner import ClassEvent

__all__ = ["CalendarParse", "parse_calendar"]

MAX_STUDENTS = 100_000
_DURATION = re.compile(r"^P(?:T)?(?:(\d+)H)?(?:(\d+)M)?$")


@dataclass(frozen=True)
class CalendarParse:
    events: tuple[ClassEvent, ...]
    problems: tuple[str, ...]  # one sentence per skipped event


def _field(event: Any, name: str) -> str | None:
    value = event.get(f"X-HUBKIT-{name}")
    if value is not None:
        return str(value).strip()
    for line in str(event.get("DESCRIPTION", "")).splitlines():
        key, _, rest = line.partition(":")
        if key.strip().lower() == f"hubkit-{name.lower()}":
            return rest.strip()
    return None


def _lead(text: str | None, default: timedelta) -> timedelta:
    if text is None:
        return default
    if text.isdigit():
        return timedelta(minutes=int(text))
    match = _DURATION.match(text.upper())
    if not match or not any(match.groups()):
        raise ValueError(f"lead time {text!r} is neither minutes nor an ISO duration like PT20M")
    return timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))


def _mix(text: str | None) -> dict[str, float]:
    if not text:
        return {}
    mix: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"profile mix {text!r} must look like cpu=0.7,gpu=0.3")
        share = float(value)
        if not 0 <= share <= 1:
            raise ValueError(f"profile share {part.strip()!r} must be between 0 and 1")
        mix[key.strip()] = share
    if sum(mix.values()) > 1.0001:
        raise ValueError(f"profile shares {text!r} add up to more than 1")
    return mix


def _aware(value: date | datetime, tz: tzinfo) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError("all-day events are not class sessions; give a start time")
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _occurrences(event: Any, start: datetime, since: datetime, until: datetime) -> Iterator[datetime]:
    """Start times of the event (expanded when recurring) between ``since`` and ``until``."""
    rule = event.get("RRULE")
    if rule is None:
        yield start
        return
    rules = rule if isinstance(rule, list) else [rule]
    text = "\n".join("RRULE:" + r.to_ical().decode() for r in rules)
    excluded: set[datetime] = set()
    exdates = event.get("EXDATE")
    for ex in exdates if isinstance(exdates, list) else [exdates] if exdates is not None else []:
        for d in ex.dts:
            excluded.add(_aware(d.dt, start.tzinfo or UTC))
    for occurrence in rrulestr(text, dtstart=start).between(since, until, inc=True):
        if occurrence not in excluded:
            yield occurrence


def parse_calendar(
    text: str, since: datetime, until: datetime, default_lead: timedelta, tz: tzinfo
) -> CalendarParse:
    """Class sessions that overlap ``[since, until]``; floating times are read in ``tz``."""
    try:
        calendar = Calendar.from_ical(text)
    except ValueError as e:
        raise CalendarError(f"the calendar is not valid iCalendar data: {e}") from e
    events: list[ClassEvent] = []
    problems: list[str] = []
    found: list[Any] = list(calendar.walk("VEVENT"))  # icalendar's property unions are too wide to narrow
    for vevent in found:
        summary = str(vevent.get("SUMMARY", "(no title)"))[:200]
        uid = str(vevent.get("UID", summary))
        try:
            students_text = _field(vevent, "STUDENTS")
            if students_text is None:
                continue  # not a class session
            students = int(students_text)
            if not 0 < students <= MAX_STUDENTS:
                raise ValueError(f"expected students {students} is not between 1 and {MAX_STUDENTS}")
            mix = _mix(_field(vevent, "PROFILES"))
            lead = _lead(_field(vevent, "LEAD"), default_lead)
            if vevent.get("DTSTART") is None:
                raise ValueError("it has no DTSTART")
            start = _aware(vevent["DTSTART"].dt, tz)
            if vevent.get("DTEND") is not None:
                duration = _aware(vevent["DTEND"].dt, tz) - start
            elif vevent.get("DURATION") is not None:
                duration = vevent["DURATION"].dt
            else:
                raise ValueError("it has neither DTEND nor DURATION")
            if duration <= timedelta(0):
                raise ValueError("it ends before it starts")
            for occurrence in _occurrences(vevent, start, since - duration - lead, until):
                events.append(
                    ClassEvent(uid, summary, occurrence, occurrence + duration, students, mix, lead)
                )
        except (ValueError, TypeError) as e:
            problems.append(f"event {summary!r} ({uid}) skipped: {e}")
    events.sort(key=lambda e: e.start)
    return CalendarParse(tuple(events), tuple(problems))
