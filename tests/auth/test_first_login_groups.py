"""A new user's managed groups are joined when the hub creates the user (hubkit.auth.first_groups).

JupyterHub's own ``sync_groups`` must then find nothing to change, the groups' roles must still apply
(they are loaded lazily, never assumed empty), and later logins with other groups go through
JupyterHub's synchronisation as before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx

from hubkit_testing.hub import Hub
from hubkit_testing.lms_simulator import Course, LMSSimulator, Person

STAFF_ROLE = """
c.JupyterHub.load_roles.append(
    {"name": "course-staff", "scopes": ["list:users"], "groups": ["course:c1:instructor"]}
)
"""
C1 = Course("c1", "Course one", "C1")


def person(role: str) -> Person:
    return Person(f"u-{uuid.uuid4().hex[:10]}", "Test Person", role)


async def launch(hub: Hub, lms: LMSSimulator, who: Person, course: Course) -> None:
    async with hub.client() as c:
        r = await c.post("/hub/lti/launch", data=lms.lti11_params(who, course))
    assert r.status_code == 302, r.text


async def user_can_list_users(hub: Hub, name: str) -> bool:
    token = await hub.user_token(name)
    async with httpx.AsyncClient(base_url=hub.url) as c:
        r = await c.get("/hub/api/users", headers={"Authorization": f"token {token}"})
    return r.status_code == 200


async def test_a_new_user_joins_existing_and_new_groups_and_the_groups_roles_apply(
    lti11_hub_factory: Callable[[str], Hub], lms: LMSSimulator
) -> None:
    hub = lti11_hub_factory("")
    first = person("instructor")
    await launch(hub, lms, first, C1)  # creates the group: with manage_groups only logins may
    hub.stop()  # the admin then grants the course's instructors a role, and restarts the hub
    hub.options.config += STAFF_ROLE
    hub.start()

    # Reading the group loads its member list into the hub's session; a new member must still show.
    assert (await hub.api("GET", "/groups/course:c1:instructor"))["users"] == [first.user_id]
    instructor, student = person("instructor"), person("student")
    await launch(hub, lms, instructor, C1)
    await launch(hub, lms, student, C1)

    assert (await hub.api("GET", f"/users/{instructor.user_id}"))["groups"] == ["course:c1:instructor"]
    assert (await hub.api("GET", f"/users/{student.user_id}"))["groups"] == ["course:c1:student"]
    members = (await hub.api("GET", "/groups/course:c1:instructor"))["users"]
    assert sorted(members) == sorted([first.user_id, instructor.user_id])
    assert (await hub.api("GET", "/groups/course:c1:student"))["users"] == [student.user_id]
    # The role granted to the pre-existing group reaches its new member; the student has no such role.
    assert await user_can_list_users(hub, instructor.user_id)
    assert not await user_can_list_users(hub, student.user_id)

    log = hub.log_path.read_text()
    assert f"Adding new user {instructor.user_id} to group(s)" in log  # joined when created ...
    assert f"Adding user {instructor.user_id} to group(s)" not in log  # ... so sync_groups had nothing to do


async def test_a_user_in_two_courses_keeps_both_courses_groups(
    lti11_hub_factory: Callable[[str], Hub], lms: LMSSimulator
) -> None:
    hub = lti11_hub_factory("")
    who = person("instructor")
    c2 = Course("c2", "Course two", "C2")
    await launch(hub, lms, who, C1)
    await launch(hub, lms, Person(who.user_id, who.name, "ta"), c2)  # course two leaves course one alone

    model = await hub.api("GET", f"/users/{who.user_id}")
    assert sorted(model["groups"]) == ["course:c1:instructor", "course:c2:ta"]
    assert (await hub.api("GET", "/groups/course:c1:instructor"))["users"] == [who.user_id]
    gids = model["auth_state"]["hubkit"]["posix_groups"]  # both courses' gids stay in the identity
    assert [g.rsplit("-", 1)[0] for g in sorted(gids)] == ["course-c1-instructor", "course-c2-ta"], gids
    log = hub.log_path.read_text()
    assert f"Adding user {who.user_id} to group(s): {{'course:c2:ta'}}" in log  # JupyterHub's own sync
    assert f"Removing user {who.user_id} from group(s)" not in log

    # A course's own launch still changes that course's groups, and only those.
    await launch(hub, lms, Person(who.user_id, who.name, "student"), C1)
    model = await hub.api("GET", f"/users/{who.user_id}")
    assert sorted(model["groups"]) == ["course:c1:student", "course:c2:ta"]
    assert (await hub.api("GET", "/groups/course:c1:instructor"))["users"] == []
    gids = model["auth_state"]["hubkit"]["posix_groups"]
    assert [g.rsplit("-", 1)[0] for g in sorted(gids)] == ["course-c1-student", "course-c2-ta"], gids


async def test_on_postgresql_first_logins_join_groups_and_replays_are_refused_after_a_restart(
    lti11_hub_factory: Callable[[str], Hub], lms: LMSSimulator, postgres_url: str
) -> None:
    # The hub's database, and so HubKit's ledger and the group rows written at user creation, on PostgreSQL.
    hub = lti11_hub_factory(f"c.JupyterHub.db_url = {postgres_url!r}\n")
    people = [person("student") for _ in range(12)] + [person("instructor")]
    signed = [lms.lti11_params(who, C1) for who in people]
    async with hub.client() as c:
        responses = await asyncio.gather(*(c.post("/hub/lti/launch", data=p) for p in signed))
    assert [r.status_code for r in responses] == [302] * len(people)
    students = (await hub.api("GET", "/groups/course:c1:student"))["users"]
    assert sorted(students) == sorted(p.user_id for p in people[:-1])
    blocks = [(await hub.api("GET", f"/users/{p.user_id}"))["auth_state"]["hubkit"] for p in people]
    assert len({b["uid"] for b in blocks}) == len(people)
    assert len({tuple(b["posix_groups"].values()) for b in blocks[:-1]}) == 1  # one course gid

    hub.stop()
    hub.start()
    async with hub.client() as c:
        r = await c.post("/hub/lti/launch", data=signed[0])
    assert r.status_code == 401, r.text
    assert "already used" in r.text
