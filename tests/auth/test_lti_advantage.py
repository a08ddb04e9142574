"""LTI Advantage roster sync (NRPS 2.0) and grade passback (AGS 2.0) against the LMS simulator, which
plays the platform side honestly.

The hub authenticates to the simulator's token endpoint with a client assertion signed by its tool key;
the simulator verifies it against the hub's own ``/hub/lti13/jwks``, serves the roster in pages and
records the scores posted to its line items.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hubkit.auth.deep_linking import response_jwt
from hubkit.auth.roster_sync import CourseService, RosterSchedule
from hubkit.auth.tool_key import ASSERTION_TYPE, ToolKey
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.lms_services import NRPS_SCOPE, member
from hubkit_testing.lms_simulator import Course, LMSConfig, LMSSimulator, Person, parse_form
from hubkit_testing.waiting import eventually

COURSE = Course("nrps-101", "Roster course", "NR101")
GRADE_SCOPE = "custom:hubkit-grades:post"
GRADER_TOKEN = secrets.token_hex(16)
STUDENTS = "course:nrps-101:student"
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def write_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem)
    return path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LMSSimulator, Hub]]:
    work = tmp_path_factory.mktemp("nrps")
    lms = LMSSimulator(LMSConfig(hub_url="http://127.0.0.1:1"), course=COURSE).start()
    registered = {
        lms.issuer: {
            "client_ids": [lms.config.client_id],
            "authorize_url": lms.authorize_url,
            "jwks_url": lms.jwks_url,
            "deployment_ids": [lms.config.deployment_id],
            "token_url": lms.token_url,
        }
    }
    config = f"""
c.JupyterHub.authenticator_class = "hubkit-lti13"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.HubKitLTI13Authenticator.platforms = {registered!r}
c.HubKitLTI13Authenticator.username_key = "sub"
c.HubKitLTI13Authenticator.id_range = (3005000, 3005999)
c.HubKitLTI13Authenticator.tool_key_file = {str(write_key(work / "tool.pem"))!r}
c.HubKitLTI13Authenticator.roster_sync_interval = 2
c.HubKitLTI13Authenticator.roster_retry_seconds = 1
c.JupyterHub.custom_scopes = {{"{GRADE_SCOPE}": {{"description": "Post LMS grades of any course."}}}}
c.JupyterHub.services.append({{"name": "grader", "api_token": {GRADER_TOKEN!r}}})
c.JupyterHub.load_roles.append({{"name": "grader", "scopes": ["{GRADE_SCOPE}"], "services": ["grader"]}})
"""
    env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
    hub = Hub(HubOptions(workdir=work / "hub", config=config, env=env))
    try:
        hub.start()
        lms.config.hub_url = hub.url
        lms.config.tool_jwks_url = f"{hub.url}/hub/lti13/jwks"
        yield lms, hub
    finally:
        hub.stop()
        lms.stop()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def launch(hub: Hub, lms: LMSSimulator, who: Person, message: str = "") -> httpx.Response:
    """A full LTI 1.3 launch (login initiation, the LMS's form post) as a browser makes it."""
    async with hub.client() as client:
        initiation = lms.login_initiation(who, message)
        r = await client.post("/hub/lti13/oauth_login", data=initiation, headers=CROSS_SITE)
        assert r.status_code == 302, r.text
        query = dict(parse_qsl(urlsplit(r.headers["location"]).query))
        async with httpx.AsyncClient() as to_lms:
            page = await to_lms.get(lms.authorize_url, params=query)
        action, fields = parse_form(page.text)
        return await client.post(action, data=fields, headers=CROSS_SITE)


async def members_of(hub: Hub, group: str) -> list[str]:
    return sorted((await hub.api("GET", f"/groups/{group}"))["users"])


async def test_the_tool_publishes_its_key_and_the_platform_checks_its_assertions(
    platform: tuple[LMSSimulator, Hub], tmp_path: Path
) -> None:
    lms, hub = platform
    async with hub.client() as c:
        jwks = (await c.get("/hub/lti13/jwks")).json()
    assert [k["alg"] for k in jwks["keys"]] == ["RS256"]
    assert "d" not in jwks["keys"][0]  # the public half only

    forged = ToolKey.from_pem_file(write_key(tmp_path / "other.pem"))  # not the tool's key
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": forged.client_assertion(lms.config.client_id, lms.token_url),
        "scope": NRPS_SCOPE,
    }
    async with httpx.AsyncClient() as c:
        refused = await c.post(lms.token_url, data=form)
        unsigned = await c.post(
            lms.token_url,
            data=form
            | {
                "client_assertion": jwt.encode(
                    {"iss": "x"}, "a shared secret is no tool key " * 2, algorithm="HS256"
                )
            },
        )
    assert refused.status_code == 401, refused.text
    assert unsigned.status_code == 401, unsigned.text
    assert refused.json()["error"] == "invalid_client"


async def test_groups_follow_the_roster_before_first_launch_and_after_a_drop(
    platform: tuple[LMSSimulator, Hub],
) -> None:
    lms, hub = platform
    instructor = Person(uid("ins"), "Ida", "instructor")
    a, b, c, ta = uid("a"), uid("b"), uid("c"), uid("ta")
    lms.services.roster[COURSE.context_id] = [
        member(instructor.user_id, "instructor"),
        member(a, "student"),
        member(b, "student", status="Inactive"),
        member(c, "student"),
        member(ta, "ta"),
    ]  # three pages of two
    assert (await launch(hub, lms, instructor)).status_code == 302

    assert await members_of(hub, STUDENTS) == sorted([a, c])  # b is inactive: kept out
    assert await members_of(hub, "course:nrps-101:ta") == [ta]
    assert await members_of(hub, "course:nrps-101:instructor") == [instructor.user_id]
    assert (await hub.api("GET", f"/users/{a}"))["groups"] == [STUDENTS]  # before a ever launched
    assert "user" in (await hub.api("GET", f"/users/{a}"))["roles"]

    # a then launches: the group stays (the launch agrees with the roster).
    assert (await launch(hub, lms, Person(a, "A", "student"))).status_code == 302
    assert await members_of(hub, STUDENTS) == sorted([a, c])

    # c is dropped, b becomes active: the next instructor launch applies it.
    lms.services.roster[COURSE.context_id] = [
        member(instructor.user_id, "instructor"),
        member(a, "student"),
        member(b, "student"),
        member(ta, "ta"),
    ]
    assert (await launch(hub, lms, instructor)).status_code == 302
    assert await members_of(hub, STUDENTS) == sorted([a, b])
    assert (await hub.api("GET", f"/users/{c}"))["groups"] == []


async def test_a_platform_error_changes_nothing_and_the_schedule_retries(
    platform: tuple[LMSSimulator, Hub],
) -> None:
    lms, hub = platform
    instructor = Person(uid("ins"), "Ida", "instructor")
    a, c = uid("a"), uid("c")
    lms.services.roster[COURSE.context_id] = [member(instructor.user_id, "instructor"), member(a, "student")]
    assert (await launch(hub, lms, instructor)).status_code == 302
    assert await members_of(hub, STUDENTS) == [a]

    # The roster grows to two pages, but page 2 fails: the sync writes nothing (not even page 1's news).
    lms.services.roster[COURSE.context_id] = [
        member(instructor.user_id, "instructor"),
        member(c, "student"),
        member(a, "student"),
    ]
    lms.services.fail_next = {"nrps-page-2": 503}
    assert (await launch(hub, lms, instructor)).status_code == 302  # the launch itself still works
    assert await members_of(hub, STUDENTS) == [a]
    assert "Roster sync failed, nothing changed" in hub.log_path.read_text()

    # The schedule retries (backoff from roster_retry_seconds) and then applies the roster.
    def retried() -> bool:
        headers = {"Authorization": f"token {hub.admin_token}"}
        r = httpx.get(f"{hub.url}/hub/api/groups/{STUDENTS}", headers=headers, timeout=10)
        return sorted(r.json()["users"]) == sorted([a, c])

    await eventually(retried, timeout=30, what="the retried roster sync")


def test_backoff_doubles_after_each_failure_up_to_the_interval() -> None:
    schedule = RosterSchedule(interval=600, min_backoff=30, max_backoff=600)
    course = CourseService("https://lms", "client", "ctx", "https://lms/nrps")
    schedule.remember(course)
    assert [schedule.failed(course) for _ in range(6)] == [30, 60, 120, 240, 480, 600]
    schedule.succeeded(course)
    assert schedule.due() == []


async def post_grade(hub: Hub, token: str, body: dict[str, object]) -> httpx.Response:
    async with hub.client(headers={"Authorization": f"token {token}"}) as c:
        return await c.post("/hub/lti13/ags/scores", json=body)


async def test_grades_reach_the_lms_line_item_and_refusals_are_plain(
    platform: tuple[LMSSimulator, Hub],
) -> None:
    lms, hub = platform
    instructor, student, other = (
        Person(uid("ins"), "Ida", "instructor"),
        Person(uid("s"), "Sam", "student"),
        Person(uid("o"), "Olga", "student"),
    )
    lms.services.roster[COURSE.context_id] = [
        member(instructor.user_id, "instructor"),
        member(student.user_id, "student"),
        member(other.user_id, "student"),
    ]
    for who in (instructor, student):
        assert (await launch(hub, lms, who)).status_code == 302
    link = f"{COURSE.context_id}-link-1"
    score = {"user": student.user_id, "context_id": COURSE.context_id, "resource_link_id": link}
    score |= {"score_given": 8, "score_maximum": 10, "label": "Week 1"}

    teacher = await hub.user_token(instructor.user_id)
    r = await post_grade(hub, teacher, score)
    assert r.status_code == 201, r.text
    recorded = lms.services.scores[-1]
    assert recorded["userId"] == student.user_id  # the LMS user id from the student's launch
    assert (recorded["scoreGiven"], recorded["scoreMaximum"]) == (8, 10)
    assert (recorded["activityProgress"], recorded["gradingProgress"]) == ("Completed", "FullyGraded")
    items = list(lms.services.lineitems[COURSE.context_id].values())
    assert [(i["resourceLinkId"], i["label"], i["id"]) for i in items] == [
        (link, "Week 1", recorded["lineitem"])
    ]

    # A grading service's token with the scope posts too, into the same line item.
    r = await post_grade(hub, GRADER_TOKEN, score | {"user": other.user_id, "score_given": 10})
    assert r.status_code == 201, r.text
    assert len(lms.services.lineitems[COURSE.context_id]) == 1
    assert lms.services.scores[-1]["userId"] == other.user_id

    posted = len(lms.services.scores)
    learner = await hub.user_token(student.user_id)
    refusals = [
        (learner, score, 403, "Nobody can post a grade for themselves."),
        (learner, score | {"user": other.user_id}, 403, "Only instructors and TAs"),
        (teacher, score | {"user": uid("nobody")}, 404, "is not on the course"),
        (teacher, score | {"score_given": 11}, 400, "out of range"),
        (teacher, score | {"score_given": -1}, 400, "out of range"),
        (teacher, score | {"score_maximum": 0}, 400, "out of range"),
        (teacher, {"user": student.user_id}, 400, "The score lacks"),
    ]
    for token, body, status, sentence in refusals:
        r = await post_grade(hub, token, body)
        assert r.status_code == status, (body, r.text)
        assert sentence in r.json()["message"], r.text
    assert len(lms.services.scores) == posted  # nothing refused reached the LMS


async def test_deep_linking_adds_a_signed_link_that_later_launches_land_on(
    platform: tuple[LMSSimulator, Hub], tmp_path: Path
) -> None:
    lms, hub = platform
    lms.services.roster.pop(COURSE.context_id, None)  # no roster: the sync leaves the groups alone
    instructor = Person(uid("ins"), "Ida", "instructor")
    chooser = await launch(hub, lms, instructor, "deeplink")
    assert chooser.status_code == 200, chooser.text
    assert "Add a Jupyter link" in chooser.text
    action, fields = parse_form(chooser.text)

    async with hub.client() as c:
        bad = await c.post(action, data=fields | {"repo": "https://evil.example/x.git"})
        answer = await c.post(action, data=fields | {"title": "Week 1", "notebook": "week1/intro.ipynb"})
    assert bad.status_code == 400, bad.text
    assert "not allowed on this hub" in bad.text
    assert answer.status_code == 200, answer.text
    return_url, response = parse_form(answer.text)
    assert return_url == f"{lms.url}/lti13/deep_link_return"

    async with httpx.AsyncClient() as to_lms:
        added = await to_lms.post(return_url, data=response)
        replayed = await to_lms.post(return_url, data=response)
        forged_key = ToolKey.from_pem_file(write_key(tmp_path / "forged.pem"))
        choice = {
            "client_id": lms.config.client_id,
            "iss": lms.issuer,
            "deployment_id": lms.config.deployment_id,
            "data": lms.services.deep_link_settings(COURSE.context_id)["data"],
        }
        forged = await to_lms.post(
            return_url, data={"JWT": response_jwt(forged_key, choice, "Evil", {"notebook": "x.ipynb"})}
        )
    assert added.status_code == 200, added.text
    assert replayed.status_code == 401, replayed.text
    assert "replayed" in replayed.text
    assert forged.status_code == 401, forged.text
    assert [link["custom"] for link in lms.services.links[COURSE.context_id]] == [
        {"notebook": "week1/intro.ipynb"}
    ]

    # A student's launch of the new link lands on the chosen notebook.
    number = len(lms.services.links[COURSE.context_id])
    landed = await launch(hub, lms, Person(uid("s"), "Sam", "student"), f"link={number}")
    assert landed.status_code == 302, landed.text
    assert landed.headers["location"] == "/hub/user-redirect/lab/tree/week1/intro.ipynb"

    # Students cannot add links.
    refused = await launch(hub, lms, Person(uid("s"), "Sam", "student"), "deeplink")
    assert refused.status_code == 403, refused.text
    assert "Only instructors can add hub links" in refused.text
