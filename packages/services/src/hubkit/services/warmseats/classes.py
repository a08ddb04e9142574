"""Class sessions: the calendar's sessions (:mod:`..common.calendar`) that say how many students come.

Each session (a single event, or one occurrence of a series; a moved one inherits what it omits) may carry:

- ``X-HUBKIT-STUDENTS:120`` — expected students (required: sessions without it are not classes);
- ``X-HUBKIT-PROFILES:cpu=0.7,gpu=0.3`` — share of students per profile slug or seat-size name;
- ``X-HUBKIT-LEAD:PT20M`` (or minutes, ``20``) — how long before the start the seats must be warm.

Calendar apps that cannot set ``X-`` properties can put the same as ``hubkit-students: 120`` lines
(``hubkit-profiles:``, ``hubkit-lead:``) in the DESCRIPTION. A bad event is skipped and reported once; it
never hides the other events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from hubkit.services.common.calendar import CalendarRead, Session, parse_ics, sessions

from .planner import ClassEvent

__all__ = ["CalendarParse", "class_events", "parse_calendar"]

MAX_STUDENTS = 100_000
_DURATION = re.compile(r"^P(?:T)?(?:(\d+)H)?(?:(\d+)M)?$")


@dataclass(frozen=True)
class CalendarParse:
    events: tuple[ClassEvent, ...]
    problems: tuple[str, ...]  # one sentence per skipped event


def _field(session: Session, name: str) -> str | None:
    value = session.property(f"X-HUBKIT-{name}")
    if value is not None:
        return value.strip()
    for line in session.description.splitlines():
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


def _class_event(session: Session, default_lead: timedelta) -> ClassEvent | None:
    students_text = _field(session, "STUDENTS")
    if students_text is None:
        return None  # not a class session
    students = int(students_text)
    if not 0 < students <= MAX_STUDENTS:
        raise ValueError(f"expected students {students} is not between 1 and {MAX_STUDENTS}")
    mix = _mix(_field(session, "PROFILES"))
    lead = _lead(_field(session, "LEAD"), default_lead)
    if session.all_day:
        raise ValueError("all-day events are not class sessions; give a start time")
    if session.end <= session.start:
        raise ValueError("it has neither DTEND nor DURATION")
    return ClassEvent(session.uid, session.summary, session.start, session.end, students, mix, lead)


def class_events(read: CalendarRead, default_lead: timedelta) -> CalendarParse:
    """The class sessions among ``read``'s sessions; a bad one is skipped with one sentence per event."""
    events: list[ClassEvent] = []
    problems = dict.fromkeys(read.problems)
    for session in read.sessions:
        try:
            event = _class_event(session, default_lead)
        except (ValueError, TypeError) as e:
            problems[f"event {session.summary!r} ({session.uid}) skipped: {e}"] = None
            continue
        if event is not None:
            events.append(event)
    events.sort(key=lambda e: e.start)
    return CalendarParse(tuple(events), tuple(problems))


def parse_calendar(
    text: str | bytes, since: datetime, until: datetime, default_lead: timedelta, tz: tzinfo
) -> CalendarParse:
    """Class sessions of ICS ``text`` that overlap ``[since, until]``; floating times are read in ``tz``.

    Raises :class:`~hubkit.services.common.exceptions.CalendarError` when ``text`` is not a calendar.
    """
    return class_events(sessions(parse_ics(text), since, until, tz), default_lead)
