"""The one calendar module (``hubkit.services.common.calendar``) and what the culler and the broker read
from it: a moved session (RECURRENCE-ID), a cancelled one (EXDATE with a time), an extra one (RDATE)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hubkit.services.common.calendar import CalendarSource, parse_ics, sessions
from hubkit.services.common.exceptions import CalendarError
from hubkit.services.culler import parse_holds
from hubkit.services.warmseats.classes import parse_calendar

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 9, 7, 0, 0, tzinfo=BERLIN)  # the first week of term

# A weekly Monday lab at 10:00 Berlin time (a VTIMEZONE, as calendar apps export it):
# - 14 Sep is cancelled (EXDATE with its time),
# - 21 Sep is moved to Tuesday 22 Sep 14:00 and made longer (an override with RECURRENCE-ID that, like
#   some calendar apps write it, repeats neither CATEGORIES nor the X-HUBKIT properties),
# - an extra session on Thursday 10 Sep 16:00 (RDATE).
LAB = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//hubkit tests//EN",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Berlin",
        "BEGIN:DAYLIGHT",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0200",
        "TZNAME:CEST",
        "DTSTART:19700329T020000",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "END:DAYLIGHT",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "TZNAME:CET",
        "DTSTART:19701025T030000",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:lab-101@example.edu",
        "DTSTAMP:20260801T000000Z",
        "SUMMARY:Lab 101",
        "DTSTART;TZID=Europe/Berlin:20260907T100000",
        "DTEND;TZID=Europe/Berlin:20260907T113000",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
        "EXDATE;TZID=Europe/Berlin:20260914T100000",
        "RDATE;TZID=Europe/Berlin:20260910T160000",
        "CATEGORIES:course-101",
        "X-HUBKIT-STUDENTS:30",
        "X-HUBKIT-LEAD:PT20M",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:lab-101@example.edu",
        "DTSTAMP:20260801T000000Z",
        "RECURRENCE-ID;TZID=Europe/Berlin:20260921T100000",
        "SUMMARY:Lab 101 (moved)",
        "DTSTART;TZID=Europe/Berlin:20260922T140000",
        "DTEND;TZID=Europe/Berlin:20260922T160000",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 9, day, hour, minute, tzinfo=BERLIN)


def test_a_series_with_a_moved_a_cancelled_and_an_extra_session() -> None:
    read = sessions(parse_ics(LAB), MONDAY, MONDAY + timedelta(weeks=3))
    assert read.problems == ()
    got = [(s.summary, s.start, s.end) for s in read.sessions]
    assert got == [
        ("Lab 101", _at(7, 10), _at(7, 11, 30)),
        ("Lab 101", _at(10, 16), _at(10, 17, 30)),  # RDATE
        # 14 Sep: cancelled; 21 Sep: moved to the 22nd, two hours long.
        ("Lab 101 (moved)", _at(22, 14), _at(22, 16)),
    ]
    moved = read.sessions[-1]
    assert moved.categories == frozenset({"course-101"})  # inherited from the series
    assert moved.property("X-HUBKIT-STUDENTS") == "30"


def test_culler_holds_follow_the_moved_and_cancelled_sessions() -> None:
    groups = frozenset({"course-101"})

    def held(at: datetime) -> list[str]:
        return [h.summary for h in parse_holds(LAB, at) if h.applies(at, groups)]

    assert held(_at(7, 10, 30)) == ["Lab 101"]
    assert held(_at(10, 16, 30)) == ["Lab 101"]  # the extra session
    assert held(_at(14, 10, 30)) == []  # cancelled
    assert held(_at(21, 10, 30)) == []  # moved away from here ...
    assert held(_at(22, 15, 30)) == ["Lab 101 (moved)"]  # ... to here
    assert [h for h in parse_holds(LAB, _at(22, 15)) if h.applies(_at(22, 15), frozenset({"other"}))] == []


def test_warm_seats_plan_for_the_moved_session_and_not_the_cancelled_one() -> None:
    parsed = parse_calendar(LAB, MONDAY, MONDAY + timedelta(weeks=3), timedelta(minutes=15), UTC)
    assert parsed.problems == ()
    assert [(e.start, e.students, e.lead) for e in parsed.events] == [
        (_at(7, 10), 30, timedelta(minutes=20)),
        (_at(10, 16), 30, timedelta(minutes=20)),
        (_at(22, 14), 30, timedelta(minutes=20)),  # the override inherits students and lead
    ]


def test_floating_and_all_day_events_are_read_in_the_given_zone() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:f\r\nSUMMARY:Floating\r\nDTSTART:20260908T090000\r\nDTEND:20260908T100000\r\n"
        "END:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:d\r\nSUMMARY:Day\r\nDTSTART;VALUE=DATE:20260909\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    zone = ZoneInfo("America/Los_Angeles")
    read = sessions(
        parse_ics(text), datetime(2026, 9, 8, 16, tzinfo=UTC), datetime(2026, 9, 11, tzinfo=UTC), zone
    )
    floating, day = read.sessions
    assert (floating.start, floating.all_day) == (datetime(2026, 9, 8, 9, tzinfo=zone), False)
    assert (day.start, day.end, day.all_day) == (
        datetime(2026, 9, 9, tzinfo=zone),
        datetime(2026, 9, 10, tzinfo=zone),
        True,
    )
    # The window is exact once the zone is applied: 09:00 in Los Angeles is 16:00 UTC.
    later = sessions(
        parse_ics(text), datetime(2026, 9, 8, 17, tzinfo=UTC), datetime(2026, 9, 11, tzinfo=UTC), zone
    )
    assert [s.summary for s in later.sessions] == ["Day"]


def test_an_unusable_event_is_one_sentence_and_hides_nothing_else() -> None:
    text = LAB.replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\r\nUID:bad\r\nSUMMARY:Backwards\r\nDTSTART:20260908T100000Z\r\n"
        "DTEND:20260908T090000Z\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:nostart\r\nSUMMARY:No start\r\nDTEND:20260908T090000Z\r\nEND:VEVENT\r\n"
        "END:VCALENDAR",
    )
    read = sessions(parse_ics(text), MONDAY, MONDAY + timedelta(weeks=3))
    assert read.problems == (
        "event 'Backwards' (bad) skipped: it ends before it starts",
        "event 'No start' (nostart) skipped: it has no DTSTART",
    )
    assert len(read.sessions) == 3


def test_not_a_calendar_is_one_error_naming_the_source() -> None:
    with pytest.raises(
        CalendarError, match=r"^the calendar /x.ics is not a valid ICS calendar \(not valid iCalendar data: "
    ):
        parse_ics("this is not a calendar", "the calendar /x.ics")


async def test_source_keeps_the_last_good_copy_and_says_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.ics"
    source = CalendarSource(path, None, timedelta(0))
    assert await source.calendar() is None
    assert source.last_error is not None
    assert "cannot read the calendar" in source.last_error
    path.write_text(LAB)
    good = await source.calendar()
    assert good is not None
    assert source.last_error is None
    path.write_text("BEGIN:VCALENDAR\r\nthis is broken")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="hubkit.services.common.calendar"):
        assert await source.calendar() is good
        assert await source.calendar() is good
    assert source.last_error is not None
    assert "is not a valid ICS calendar" in source.last_error
    assert [r.getMessage().endswith("keeping the last good copy") for r in caplog.records] == [True]
    # A refresh interval: not re-read before it is due.
    slow = CalendarSource(path, None, timedelta(hours=1))
    path.write_text(LAB)
    first = await slow.calendar()
    path.write_text(LAB.replace("Lab 101", "Renamed"))
    await asyncio.sleep(0)
    assert await slow.calendar() is first
