"""Each culling policy against a real hub; the culler's clock is moved, the hub's time is real."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from conftest import CullerHub

from hubkit.services.culler import CalendarSettings, CullerSettings, IdleRule, UserCulling, parse_holds

MIN = timedelta(minutes=1)


async def test_idle_timeout_per_profile_and_group(culler_hub: Callable[..., CullerHub]) -> None:
    ch = culler_hub()
    hub = ch.hub
    await hub.start_server("gpu-idle", {"profile": "gpu"})
    await hub.start_server("gpu-busy", {"profile": "gpu"})
    await hub.start_server("cpu-idle", {"profile": "cpu"})
    await hub.start_server("tutor", {"profile": "cpu"})
    await hub.api("POST", "/groups/short-sessions", {"users": ["tutor"]})
    await ch.activity("gpu-busy", 50 * MIN)
    settings = CullerSettings(
        idle_timeout_seconds=7200,
        idle_rules=[
            IdleRule(name="gpu", profiles=["gpu"], timeout_seconds=20 * 60),
            IdleRule(name="short", groups=["short-sessions"], timeout_seconds=45 * 60),
        ],
    )
    culler = ch.culler(settings, at=59 * MIN)
    report = await culler.sweep()
    await culler.client.aclose()

    assert {(d.target, d.policy) for d in report.culled} == {
        ("gpu-idle/", "idle:gpu"),
        ("tutor/", "idle:short"),
    }
    assert not report.failed
    assert report.checked == 4
    assert await ch.running() == {"gpu-busy/", "cpu-idle/"}

    # Two hours later the CPU server's default timeout is reached too.
    later = ch.culler(settings, at=2 * 60 * MIN + 5 * MIN)
    report = await later.sweep()
    await later.client.aclose()
    assert {(d.target, d.policy) for d in report.culled} == {
        ("cpu-idle/", "idle:default"),
        ("gpu-busy/", "idle:gpu"),
    }
    assert await ch.running() == set()


async def test_max_age_culls_busy_servers(culler_hub: Callable[..., CullerHub]) -> None:
    ch = culler_hub()
    await ch.hub.start_server("marathon")
    await ch.hub.start_server("dr.who@lab")  # a name that needs quoting in API paths
    await ch.activity("marathon", 55 * MIN)
    culler = ch.culler(CullerSettings(idle_timeout_seconds=7200, max_age_seconds=30 * 60), at=59 * MIN)
    report = await culler.sweep()
    await culler.client.aclose()
    assert {(d.target, d.policy) for d in report.culled} == {
        ("dr.who@lab/", "max-age"),
        ("marathon/", "max-age"),
    }
    assert all(d.reason.startswith("running for 00:5") for d in report.culled)
    assert await ch.running() == set()


async def test_named_servers_culled_and_removed_or_left_alone(culler_hub: Callable[..., CullerHub]) -> None:
    ch = culler_hub()
    await ch.hub.start_server("ada")
    await ch.start_named("ada", "big-job")
    await ch.start_named("ada", "scratch")

    keep_named = ch.culler(CullerSettings(idle_timeout_seconds=600, cull_named_servers=False), at=30 * MIN)
    report = await keep_named.sweep()
    await keep_named.client.aclose()
    assert [d.target for d in report.culled] == ["ada/"]
    assert await ch.running() == {"ada/big-job", "ada/scratch"}

    await ch.activity("ada", 40 * MIN, server="scratch")
    remove = ch.culler(CullerSettings(idle_timeout_seconds=600, remove_named_servers=True), at=45 * MIN)
    report = await remove.sweep()
    await remove.client.aclose()
    assert [(d.target, d.policy) for d in report.culled] == [("ada/big-job", "idle:default")]
    model = await ch.hub.api("GET", "/users/ada?include_stopped_servers=1")
    assert set(model["servers"]) == {"", "scratch"}  # big-job was removed entirely, "" only stopped
    assert await ch.running() == {"ada/scratch"}


async def test_inactive_users_deleted_but_never_admins_unless_asked(
    culler_hub: Callable[..., CullerHub],
) -> None:
    ch = culler_hub('c.Authenticator.admin_users = {"boss"}\n')
    hub = ch.hub
    await hub.api("POST", "/users", {"usernames": ["dormant", "recent"]})
    assert (await hub.api("GET", "/users/boss"))["admin"]
    await hub.start_server("worker")
    await ch.activity("recent", 55 * MIN)
    await ch.activity("worker", 55 * MIN)
    week = timedelta(days=7)

    settings = CullerSettings(idle_timeout_seconds=30 * 86400, users=UserCulling(inactive_days=7))
    report = await _sweep(ch, settings, week + 30 * MIN)
    assert [(d.target, d.policy) for d in report.culled] == [("dormant", "inactive-user")]
    names = {u["name"] for u in await hub.api("GET", "/users")}
    assert {"recent", "boss", "worker"} <= names
    assert "dormant" not in names

    # 'recent' was active 55 min into the test: an hour later they are deleted too, still not the admin.
    assert [d.target for d in (await _sweep(ch, settings, week + 2 * 60 * MIN)).culled] == ["recent"]
    admins_too = settings.model_copy(update={"users": UserCulling(inactive_days=7, include_admins=True)})
    report = await _sweep(ch, admins_too, week + 2 * 60 * MIN)
    assert [d.target for d in report.culled] == ["boss"]
    assert "worker" in {u["name"] for u in await hub.api("GET", "/users")}  # has a running server


async def _sweep(ch: CullerHub, settings: CullerSettings, at: timedelta):  # type: ignore[no-untyped-def]
    culler = ch.culler(settings, at=at)
    try:
        return await culler.sweep()
    finally:
        await culler.client.aclose()


def _ics(events: str) -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hubkit tests//EN\r\n{events}END:VCALENDAR\r\n"


def _event(uid: str, summary: str, start: str, end: str, extra: str = "") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:{summary}\r\n"
        f"DTSTART:{start}\r\nDTEND:{end}\r\n{extra}END:VEVENT\r\n"
    )


async def test_hold_during_scheduled_session(culler_hub: Callable[..., CullerHub], tmp_path: Path) -> None:
    ch = culler_hub()
    hub = ch.hub
    for user in ("student-a", "student-b", "outsider"):
        await hub.start_server(user)
    await hub.api("POST", "/groups/course-101", {"users": ["student-a", "student-b"]})
    at = ch.t0 + 3 * 60 * MIN

    def stamp(minutes: int) -> str:
        return (at + minutes * MIN).strftime("%Y%m%dT%H%M%SZ")

    # course-101's lab runs now (a weekly recurrence that started weeks ago); another course's lab
    # is over; the outsider is in neither.
    first = at - timedelta(weeks=3)
    calendar = tmp_path / "sessions.ics"
    calendar.write_text(
        _ics(
            _event(
                "lab",
                "Lab 101",
                (first - 30 * MIN).strftime("%Y%m%dT%H%M%SZ"),
                (first + 90 * MIN).strftime("%Y%m%dT%H%M%SZ"),
                "RRULE:FREQ=WEEKLY\r\nCATEGORIES:course-101\r\n",
            )
            + _event("old", "Lab 202", stamp(-120), stamp(-60), "CATEGORIES:course-202\r\n")
        )
    )
    settings = CullerSettings(idle_timeout_seconds=3600, calendar=CalendarSettings(path=calendar))
    report = await _sweep(ch, settings, 3 * 60 * MIN)
    assert [d.target for d in report.culled] == ["outsider/"]
    assert report.held == 2
    assert await ch.running() == {"student-a/", "student-b/"}

    # A cancelled occurrence (EXDATE) holds nobody.
    occurrence = (first + timedelta(weeks=3) - 30 * MIN).strftime("%Y%m%dT%H%M%SZ")
    cancelled = (
        calendar.read_bytes()
        .decode()
        .replace("RRULE:FREQ=WEEKLY\r\n", f"RRULE:FREQ=WEEKLY\r\nEXDATE:{occurrence}\r\n")
    )
    assert [
        h.summary for h in parse_holds(calendar.read_bytes(), at) if h.applies(at, frozenset({"course-101"}))
    ] == ["Lab 101"]
    assert not [h for h in parse_holds(cancelled, at) if h.applies(at, frozenset({"course-101"}))]

    # After the session the hold ends.
    report = await _sweep(ch, settings, 3 * 60 * MIN + 2 * 60 * MIN)
    assert sorted(d.target for d in report.culled) == ["student-a/", "student-b/"]
