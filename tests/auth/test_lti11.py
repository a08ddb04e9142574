"""HubKit's LTI 1.1 authenticator on a real hub, launched by the LMS simulator's signed requests."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hubkit.auth import home_name
from hubkit.auth.identity import posix_group_name
from hubkit_testing.hub import Hub
from hubkit_testing.lms_simulator import Course, Launch11Options, LMSSimulator, Person
from hubkit_testing.tiny_spawner import TINY_SPAWNER

LAUNCH = "/hub/lti/launch"
LTI11_ID_RANGE = (3_000_000, 3_000_999)  # as configured by the lti11_hub fixture


def person(role: str = "student", user_id: str | None = None) -> Person:
    return Person(user_id or f"u-{uuid.uuid4().hex[:10]}", "Test Person", role)


async def launch(hub: Hub, params: dict[str, str], **kwargs: Any) -> httpx.Response:
    async with hub.client(**kwargs) as c:
        return await c.post(LAUNCH, data=params)


async def user_model(hub: Hub, name: str) -> dict[str, Any]:
    model: dict[str, Any] = await hub.api("GET", f"/users/{name}")
    return model


async def test_student_launch_logs_in_with_identity_and_course_group(
    lti11_hub: Hub, lms: LMSSimulator
) -> None:
    student = person()
    r = await launch(lti11_hub, lms.lti11_params(student))
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/hub/home"
    assert "jupyterhub-session-id" in r.cookies
    model = await user_model(lti11_hub, student.user_id)
    assert model["groups"] == [f"course:{lms.course.context_id}:student"]
    assert not model["admin"]
    block = model["auth_state"]["hubkit"]
    key = f"lti:hubkit-test:{student.user_id}"
    assert block["key"] == key
    assert block["home"] == home_name(key)
    assert LTI11_ID_RANGE[0] <= block["uid"] <= LTI11_ID_RANGE[1]
    assert block["gid"] == block["uid"]
    assert model["auth_state"]["lti11"]["context_id"] == lms.course.context_id
    # The course group has its own gid from the same range, shared by everyone in that group.
    ((name, gid),) = block["posix_groups"].items()
    assert name == posix_group_name(f"course:{lms.course.context_id}:student")
    assert LTI11_ID_RANGE[0] <= gid <= LTI11_ID_RANGE[1]
    assert gid != block["uid"]
    classmate = person()
    assert (await launch(lti11_hub, lms.lti11_params(classmate))).status_code == 302
    other = (await user_model(lti11_hub, classmate.user_id))["auth_state"]["hubkit"]
    assert other["posix_groups"] == {name: gid}


async def test_roles_map_to_course_groups(lti11_hub: Hub, lms: LMSSimulator) -> None:
    course = Course("physics-201", "Physics", "PHY201")
    instructor, ta = person("instructor"), person("ta")
    for who in (instructor, ta):
        assert (await launch(lti11_hub, lms.lti11_params(who, course))).status_code == 302
    assert (await user_model(lti11_hub, instructor.user_id))["groups"] == ["course:physics-201:instructor"]
    assert (await user_model(lti11_hub, ta.user_id))["groups"] == ["course:physics-201:ta"]
    group = await lti11_hub.api("GET", "/groups/course:physics-201:instructor")
    assert group["users"] == [instructor.user_id]


async def test_many_simultaneous_first_logins_get_distinct_uids(lti11_hub: Hub, lms: LMSSimulator) -> None:
    people = [person() for _ in range(40)]
    responses = await asyncio.gather(*(launch(lti11_hub, lms.lti11_params(p)) for p in people))
    assert [r.status_code for r in responses] == [302] * len(people)
    models = await asyncio.gather(*(user_model(lti11_hub, p.user_id) for p in people))
    uids = [m["auth_state"]["hubkit"]["uid"] for m in models]
    assert len(set(uids)) == len(people)
    assert all(LTI11_ID_RANGE[0] <= uid <= LTI11_ID_RANGE[1] for uid in uids)


async def test_launch_lands_on_a_notebook_or_an_allowed_nbgitpuller_link(
    lti11_hub: Hub, lms: LMSSimulator
) -> None:
    r = await launch(lti11_hub, lms.lti11_params(person(), custom={"notebook": "week 1/intro.ipynb"}))
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/hub/user-redirect/lab/tree/week%201/intro.ipynb"
    custom = {
        "nbgitpuller_repo": "https://github.com/hubkit/course",
        "nbgitpuller_urlpath": "lab/tree/course",
    }
    r = await launch(lti11_hub, lms.lti11_params(person(), custom=custom))
    assert r.status_code == 302, r.text
    assert r.headers["location"] == (
        "/hub/user-redirect/git-pull?repo=https%3A%2F%2Fgithub.com%2Fhubkit%2Fcourse&urlpath=lab%2Ftree%2Fcourse"
    )


async def test_a_second_launch_of_the_same_person_keeps_the_identity(
    lti11_hub: Hub, lms: LMSSimulator
) -> None:
    student = person()
    await launch(lti11_hub, lms.lti11_params(student))
    first = (await user_model(lti11_hub, student.user_id))["auth_state"]["hubkit"]
    await launch(lti11_hub, lms.lti11_params(student, Course("chem-1", "Chemistry", "CH1")))
    model = await user_model(lti11_hub, student.user_id)
    again = model["auth_state"]["hubkit"]
    assert {k: again[k] for k in ("key", "uid", "gid", "home")} == {
        k: first[k] for k in ("key", "uid", "gid", "home")
    }
    # The second course's launch adds its group; the first course's stays (each course speaks for itself).
    courses = ["course:chem-1:student", f"course:{lms.course.context_id}:student"]
    assert sorted(model["groups"]) == courses
    assert sorted(again["posix_groups"]) == sorted(posix_group_name(g) for g in courses)


async def test_the_same_user_id_at_another_lms_cannot_take_over_the_account(
    lti11_hub: Hub, lms: LMSSimulator
) -> None:
    student = person()
    assert (await launch(lti11_hub, lms.lti11_params(student))).status_code == 302
    before = await user_model(lti11_hub, student.user_id)
    options = Launch11Options(consumer_key="second-lms", secret="second-lms-secret")
    r = await launch(lti11_hub, lms.lti11_params(student, options=options))
    assert r.status_code == 403
    assert "already belongs to someone else" in html.unescape(r.text)
    after = await user_model(lti11_hub, student.user_id)
    assert after["auth_state"]["hubkit"] == before["auth_state"]["hubkit"]


def _hostile_cases() -> list[tuple[str, Any, int, str]]:
    now = int(time.time())
    return [
        ("forged", {"options": Launch11Options(secret="not-the-secret")}, 401, "signature is not valid"),
        ("stale", {"options": Launch11Options(timestamp=now - 3600)}, 401, "too old"),
        ("future", {"options": Launch11Options(timestamp=now + 3600)}, 401, "too in the future"),
        ("unknown-consumer", {"options": Launch11Options(consumer_key="evil-lms")}, 401, "does not know"),
        ("oversized", {"extra": {"custom_blob": "x" * 5000}}, 413, "longer than 4096"),
        (
            "bad-git-host",
            {"custom": {"nbgitpuller_repo": "https://evil.example/repo.git"}},
            400,
            "git host 'evil.example' is not allowed",
        ),
        (
            "next-git-host",
            {"custom": {"next": "/hub/user-redirect/git-pull?repo=https://evil.example/x"}},
            400,
            "is not allowed",
        ),
        ("open-redirect", {"custom": {"next": "https://evil.example/"}}, 400, "not another site"),
        ("notebook-dotdot", {"custom": {"notebook": "../../etc/passwd"}}, 400, "without '..'"),
    ]


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "sentence"), _hostile_cases(), ids=lambda v: str(v)[:20]
)
async def test_bad_launches_are_refused_and_create_nobody(
    lti11_hub: Hub, lms: LMSSimulator, case: str, kwargs: dict[str, Any], status: int, sentence: str
) -> None:
    victim = person(user_id=f"hostile-{case}-{uuid.uuid4().hex[:6]}")
    r = await launch(lti11_hub, lms.lti11_params(victim, **kwargs))
    assert r.status_code == status, r.text
    assert sentence in html.unescape(r.text)
    assert "jupyterhub-session-id" not in r.cookies
    await lti11_hub.api("GET", f"/users/{victim.user_id}", expect=404)
    log = lti11_hub.log_path.read_text()
    assert f"LTI 1.1 launch rejected ({status}): " in log
    assert victim.user_id in log or case in ("oversized",)


@pytest.mark.parametrize(
    ("user_id", "sentence"),
    [
        ("a/b", "contains '/'"),
        ("..", "contains '/'"),
        ("x..y", "contains '/'"),
        ("bell\x07", "control characters"),
        ("nl\nname", "control characters"),
        ("u" * 300, "longer than 200"),
    ],
    ids=["slash", "dotdot", "inner-dotdot", "bell", "newline", "300-chars"],
)
async def test_hostile_user_ids_are_refused(
    lti11_hub: Hub, lms: LMSSimulator, user_id: str, sentence: str
) -> None:
    users_before = {u["name"] for u in await lti11_hub.api("GET", "/users")}
    r = await launch(lti11_hub, lms.lti11_params(Person(user_id, "Hostile")))
    assert r.status_code == 400, r.text
    assert sentence in html.unescape(r.text)
    assert {u["name"] for u in await lti11_hub.api("GET", "/users")} == users_before
    assert "LTI 1.1 launch rejected (400)" in lti11_hub.log_path.read_text()


async def test_a_replayed_launch_is_refused_also_after_a_hub_restart(
    lti11_hub: Hub, lms: LMSSimulator
) -> None:
    student, replayed = person(), person()
    params = lms.lti11_params(student)
    assert (await launch(lti11_hub, params)).status_code == 302
    r = await launch(lti11_hub, params)
    assert r.status_code == 401
    assert "already used" in html.unescape(r.text)
    # A launch signed before the restart and replayed after it (another user, so nothing exists yet).
    replay_params = lms.lti11_params(replayed)
    assert (await launch(lti11_hub, replay_params)).status_code == 302
    await lti11_hub.api("DELETE", f"/users/{replayed.user_id}", expect=204)
    lti11_hub.stop()
    lti11_hub.start()
    r = await launch(lti11_hub, replay_params)
    assert r.status_code == 401
    assert "already used" in html.unescape(r.text)
    await lti11_hub.api("GET", f"/users/{replayed.user_id}", expect=404)
    # The identity survives the restart: a fresh launch of the first student gives the same uid.
    before = (await user_model(lti11_hub, student.user_id))["auth_state"]["hubkit"]
    assert (await launch(lti11_hub, lms.lti11_params(student))).status_code == 302
    assert (await user_model(lti11_hub, student.user_id))["auth_state"]["hubkit"] == before


async def test_without_a_target_a_launch_lands_where_jupyterhub_sends_a_login(
    lti11_hub_factory: Callable[[str], Hub], lms: LMSSimulator
) -> None:
    # No default_url: JupyterHub sends a login to the spawn page, or to the running server.
    shared_hub_url = lms.config.hub_url
    hub = lti11_hub_factory('c.JupyterHub.default_url = ""\n' + TINY_SPAWNER)
    try:
        student = person()
        r = await launch(hub, lms.lti11_params(student))
        assert r.status_code == 302, r.text
        assert r.headers["location"] == "/hub/spawn"
        await hub.start_server(student.user_id)
        r = await launch(hub, lms.lti11_params(student))
        assert r.headers["location"] == f"/user/{student.user_id}/"
        await hub.stop_server(student.user_id)
        r = await launch(hub, lms.lti11_params(student))
        assert r.headers["location"] == "/hub/spawn"
        # A ?next= on the (signed) launch URL still wins, as for any JupyterHub login.
        signed_url = Launch11Options(url=lms.config.lti11_launch_url + "?next=%2Fhub%2Fhome")
        async with hub.client() as c:
            r = await c.post(
                LAUNCH, params={"next": "/hub/home"}, data=lms.lti11_params(person(), options=signed_url)
            )
        assert r.status_code == 302, r.text
        assert r.headers["location"] == "/hub/home"
    finally:
        lms.config.hub_url = shared_hub_url  # the module's other tests launch into the shared hub
