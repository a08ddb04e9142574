"""The broker's pure parts: the capacity plan, the calendar, sizes, the scheduler configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hubkit.services.warmseats import (
    ClassEvent,
    PlanInput,
    SchedulerConfigInput,
    SizePlan,
    SizePolicy,
    WarmSeatsSettings,
    plan,
    scheduler_configuration,
)
from hubkit.services.warmseats.builders import placeholder_deployment, size_of_pod_name
from hubkit.services.warmseats.classes import parse_calendar
from hubkit.services.warmseats.exceptions import CalendarError
from hubkit.services.warmseats.sizing import size_for_pod

T0 = datetime(2026, 9, 14, 9, 0, tzinfo=UTC)
SIZES = [
    SizePolicy("small", baseline=2, maximum=500, image_pull_seconds=0, profiles=("python",)),
    SizePolicy("gpu", baseline=0, maximum=8, image_pull_seconds=180, profiles=("pytorch",)),
]


def event(students: int = 100, mix: dict[str, float] | None = None, minutes: int = 75) -> ClassEvent:
    return ClassEvent(
        "uid", "Lab", T0, T0 + timedelta(minutes=minutes), students, mix or {"python": 0.8, "pytorch": 0.2}
    )


def at(
    minutes: float,
    arrivals: dict[str, list[datetime]] | None = None,
    events: list[ClassEvent] | None = None,
) -> dict[str, SizePlan]:
    now = T0 + timedelta(minutes=minutes)
    return plan(PlanInput(now, SIZES, events if events is not None else [event()], arrivals or {}))


def test_baseline_outside_events_and_scheduled_seats_inside_the_lead_window() -> None:
    assert {k: v.count for k, v in at(-16).items()} == {"small": 2, "gpu": 0}
    inside = at(-14)
    assert {k: v.count for k, v in inside.items()} == {"small": 80, "gpu": 8}  # gpu capped at its maximum
    assert inside["gpu"].scheduled == 20
    assert inside["small"].events == ("Lab",)


def test_seats_taken_by_arrivals_are_not_kept_twice_and_the_plan_ends_after_late_arrivals() -> None:
    came = [T0 + timedelta(seconds=10 * i) for i in range(50)]
    during = at(9, {"small": came})
    assert during["small"].scheduled == 30
    assert during["small"].recent == 0, "predicted arrivals do not feed the arrival-rate term"
    assert at(11, {"small": came})["small"].count == 2


def test_unexpected_arrivals_raise_the_recent_term() -> None:
    # 30 users in ten minutes with no class: rate 0.05/s x (240 s ready + 180 s pull) = 21 GPU seats (max 8)
    came = [T0 - timedelta(hours=3, seconds=20 * i) for i in range(30)]
    p = at(-180, {"gpu": came}, events=[])
    assert p["gpu"].recent == 21
    assert p["gpu"].count == 8
    # The same for the small size, whose images are prepulled: 0.05 x 240 = 12.
    assert at(-180, {"small": came}, events=[])["small"].recent == 12
    # More students than the calendar said: the excess counts as unexpected.
    burst = [T0 + timedelta(seconds=5 * i) for i in range(100)]
    assert at(9, {"small": burst})["small"].recent == 8  # 20 unexpected / 600 s x 240 s


@given(
    students=st.integers(1, 5000),
    share=st.floats(0, 1),
    minute=st.floats(-60, 120),
    arrived=st.integers(0, 300),
    baseline=st.integers(0, 50),
    maximum=st.integers(0, 1000),
)
def test_plan_properties(
    students: int, share: float, minute: float, arrived: int, baseline: int, maximum: int
) -> None:
    sizes = [SizePolicy("s", baseline, maximum, 60.0)]
    ev = [ClassEvent("u", "c", T0, T0 + timedelta(minutes=75), students, {"s": share})]
    now = T0 + timedelta(minutes=minute)
    arrivals = {"s": [now - timedelta(seconds=i) for i in range(arrived)]}
    p = plan(PlanInput(now, sizes, ev, arrivals))["s"]
    assert p.count == min(maximum, max(baseline, p.scheduled, p.recent))
    assert 0 <= p.scheduled <= students
    more = plan(
        PlanInput(
            now, sizes, [ClassEvent("u", "c", ev[0].start, ev[0].end, students + 10, {"s": share})], arrivals
        )
    )["s"]
    assert more.scheduled >= p.scheduled, "more expected students never mean fewer seats"
    fewer_arrived = plan(PlanInput(now, sizes, ev, {"s": arrivals["s"][: arrived // 2]}))["s"]
    assert fewer_arrived.scheduled >= p.scheduled


CALENDAR = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//t//EN",
        "BEGIN:VEVENT",
        "UID:a",
        "SUMMARY:Weekly lab",
        "DTSTART:20260907T100000",
        "DTEND:20260907T113000",
        "RRULE:FREQ=WEEKLY;BYDAY=MO",
        "EXDATE:20260921T100000",
        "DESCRIPTION:Bring laptops\\nhubkit-students: 40\\nhubkit-profiles: python=1\\nhubkit-lead: 25",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:b",
        "SUMMARY:Staff meeting",
        "DTSTART:20260914T120000Z",
        "DTEND:20260914T130000Z",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:c",
        "SUMMARY:Overbooked",
        "DTSTART:20260914T120000Z",
        "DURATION:PT1H",
        "X-HUBKIT-STUDENTS:10",
        "X-HUBKIT-PROFILES:python=0.8,pytorch=0.8",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:d",
        "SUMMARY:All day",
        "DTSTART;VALUE=DATE:20260914",
        "X-HUBKIT-STUDENTS:10",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:e",
        "SUMMARY:Backwards",
        "DTSTART:20260914T120000Z",
        "DTEND:20260914T110000Z",
        "X-HUBKIT-STUDENTS:10",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def test_calendar_expands_weekly_classes_in_the_local_zone_and_reports_bad_events() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    parsed = parse_calendar(
        CALENDAR, T0 - timedelta(days=1), T0 + timedelta(days=15), timedelta(minutes=15), zone
    )
    starts = [e.start for e in parsed.events]
    assert starts == [datetime(2026, 9, 14, 10, 0, tzinfo=zone), datetime(2026, 9, 28, 10, 0, tzinfo=zone)]
    first = parsed.events[0]
    assert (first.students, dict(first.mix), first.lead) == (40, {"python": 1.0}, timedelta(minutes=25))
    assert first.end - first.start == timedelta(minutes=90)
    problems = " | ".join(parsed.problems)
    assert len(parsed.problems) == 3, problems  # the staff meeting is simply not a class
    assert "'Overbooked' (c) skipped: profile shares" in problems
    assert "'All day' (d) skipped: all-day events" in problems
    assert "'Backwards' (e) skipped: it ends before it starts" in problems


def test_unreadable_calendar_is_one_error() -> None:
    with pytest.raises(CalendarError, match="not valid iCalendar data"):
        parse_calendar("this is not a calendar", T0, T0, timedelta(0), UTC)


def settings(**extra: object) -> WarmSeatsSettings:
    base: dict[str, object] = {
        "namespace": "warmseats",
        "sizes": [
            {"name": "small", "cpu": "500m", "memory": "2Gi"},
            {"name": "big", "cpu": "2", "memory": "8Gi"},
            {"name": "gpu", "cpu": "4", "memory": "16Gi", "extended_resources": {"nvidia.com/gpu": 1}},
        ],
    }
    return WarmSeatsSettings.model_validate(base | extra)


def test_user_pods_map_to_their_seat_size() -> None:
    s = settings()

    def pod(cpu: str, mem: str, gpu: int = 0, label: str | None = None) -> dict[str, object]:
        limits = {"cpu": cpu, "memory": mem} | ({"nvidia.com/gpu": str(gpu)} if gpu else {})
        labels = {"hubkit.dev/warmseat-size": label} if label else {}
        return {"metadata": {"labels": labels}, "spec": {"containers": [{"resources": {"requests": limits}}]}}

    assert size_for_pod(pod("250m", "1Gi"), s.sizes, s.size_label) == "small"
    assert size_for_pod(pod("1", "1Gi"), s.sizes, s.size_label) == "big"
    assert size_for_pod(pod("1", "1Gi", gpu=1), s.sizes, s.size_label) == "gpu"
    assert size_for_pod(pod("64", "1Ti"), s.sizes, s.size_label) is None
    assert size_for_pod(pod("64", "1Ti", label="big"), s.sizes, s.size_label) == "big"
    assert size_for_pod(pod("1", "1Gi", label="nonsense"), s.sizes, s.size_label) == "big"


def test_placeholder_deployment_reserves_one_seat_per_pod_at_the_warm_seat_priority() -> None:
    s = settings()
    d = placeholder_deployment(s, s.sizes[2], 3)
    spec = d["spec"]["template"]["spec"]
    assert d["spec"]["replicas"] == 3
    assert spec["schedulerName"] == "hubkit-packing-scheduler"
    assert spec["priorityClassName"] == "hubkit-warmseat"
    resources = spec["containers"][0]["resources"]
    assert (
        resources["requests"] == resources["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    )
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert size_of_pod_name("warmseat-gpu-5d4f8c9b7-x2x9z") == "gpu"
    assert size_of_pod_name("warmseat-two-part-5d4f8c9b7-x2x9z") == "two-part"
    assert size_of_pod_name("jupyter-alice") is None


def test_scheduler_configuration_packs_nodes() -> None:
    config = scheduler_configuration(SchedulerConfigInput("hubkit-packing-scheduler", kubeconfig="/k"))
    profile = config["profiles"][0]
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert profile["schedulerName"] == "hubkit-packing-scheduler"
    assert {"name": "NodeResourcesBalancedAllocation"} in profile["plugins"]["score"]["disabled"]
    strategy = profile["pluginConfig"][0]["args"]["scoringStrategy"]
    assert strategy["type"] == "MostAllocated"
    assert {"name": "nvidia.com/gpu", "weight": 3} in strategy["resources"]
    assert config["clientConnection"]["kubeconfig"] == "/k"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"sizez": []}, "Extra inputs are not permitted"),
        ({"priority_value": -20}, "greater than or equal to -10"),
        ({"priority_value": 0}, "less than or equal to -1"),
        ({"sizes": []}, "at least 1 item"),
        ({"sizes": [{"name": "Big Seats!", "cpu": "1", "memory": "1Gi"}]}, "lowercase letters"),
        ({"sizes": [{"name": "a", "cpu": "1", "memory": "1Gi"}] * 2}, "size names must be unique"),
        ({"sizes": [{"name": "a", "cpu": "1", "memory": "1Gi", "colour": "red"}]}, "Extra inputs"),
        ({"calendar_path": "/a.ics", "calendar_url": "https://x/a.ics"}, "not both"),
        ({"calendar_timezone": "Mars/Olympus_Mons"}, "not a known time zone"),
        ({"calendar_timezone": "../../etc/passwd"}, "not a known time zone"),
    ],
)
def test_hostile_settings_are_refused(extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**extra)
