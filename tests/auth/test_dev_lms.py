"""``make dev``'s LTI setup: the simulator's buttons launch real users into a hub with the dev config."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import pytest
from playwright.async_api import Page

from hubkit_testing.browser import screenshot
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.lms_simulator import (
    LMSSimulator,
    dev_hub_config,
    dev_hub_env,
    parse_form,
    start_dev_lms,
    write_tool_key,
)
from hubkit_testing.processes import free_port


@pytest.fixture(scope="module")
def dev_lms() -> Iterator[LMSSimulator]:
    sim = start_dev_lms(hub_url="http://127.0.0.1:1", port=free_port())
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def dev_hub(tmp_path_factory: pytest.TempPathFactory, dev_lms: LMSSimulator) -> Iterator[Hub]:
    workdir = tmp_path_factory.mktemp("devhub")
    options = HubOptions(
        workdir=workdir,
        config=dev_hub_config(dev_lms, write_tool_key(workdir / "lti-tool.pem"))
        + '\nc.JupyterHub.default_url = "/hub/home"\n',
        env=dev_hub_env(),
    )
    hub = Hub(options)
    try:
        hub.start()
        dev_lms.config.hub_url = hub.url
        yield hub
    finally:
        hub.stop()


async def _follow_forms(client: httpx.AsyncClient, start: str) -> httpx.Response:
    """What a browser without JavaScript does: submit each auto-submitting form and follow redirects."""
    response = await client.get(start)
    for _ in range(6):
        if response.status_code in (301, 302, 303):
            response = await client.get(urljoin(str(response.url), response.headers["location"]))
            continue
        action, fields = parse_form(response.text)
        if not action:
            return response
        response = await client.post(action, data=fields)
    return response


async def test_dev_lms_uses_the_documented_credentials(dev_lms: LMSSimulator) -> None:
    assert dev_lms.config.consumer_key == "hubkit-dev"
    assert dev_lms.config.consumer_secret == "hubkit-dev-secret"
    async with httpx.AsyncClient() as c:
        page = await c.get(dev_lms.url)
    for label in ("student", "instructor"):
        for version in ("1.1", "1.3"):
            assert f"Launch as {label} of Sample Course 101 (LTI {version})" in page.text


@pytest.mark.parametrize(
    ("button", "user", "group"),
    [
        ("/launch/11/student", "lti:student-0001", "course:sample-course-101:student"),
        ("/launch/11/instructor", "lti:instructor-0001", "course:sample-course-101:instructor"),
        ("/launch/13/student", "lti13:student-0001", "course:sample-course-101:student"),
        ("/launch/13/instructor", "lti13:instructor-0001", "course:sample-course-101:instructor"),
    ],
)
async def test_each_button_launches_a_user_into_the_dev_hub(
    dev_hub: Hub, dev_lms: LMSSimulator, button: str, user: str, group: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        final = await _follow_forms(client, dev_lms.url + button)
    assert final.status_code == 200, final.text[:500]
    assert final.url.path == "/hub/home"
    model = await dev_hub.api("GET", f"/users/{user}")
    assert group in model["groups"]
    assert model["auth_state"]["hubkit"]["uid"] >= 1000


async def test_the_local_admin_logs_in(dev_hub: Hub) -> None:
    async with dev_hub.client() as c:
        await c.get("/hub/local/login")
        data = {"username": "admin", "password": "hubkit", "_xsrf": c.cookies.get("_xsrf") or ""}
        r = await c.post("/hub/local/login", data=data)
    assert r.status_code == 302, r.text
    assert (await dev_hub.api("GET", "/users/admin"))["admin"] is True


@pytest.mark.browser
async def test_a_student_clicks_the_lti13_button_in_chromium(
    dev_hub: Hub, dev_lms: LMSSimulator, page: Page
) -> None:
    await page.goto(dev_lms.url)
    await page.click("text=Launch as student of Sample Course 101 (LTI 1.3)")
    await page.wait_for_url(f"{dev_hub.url}/hub/home", timeout=30_000)
    await screenshot(page, "auth-dev-lti13-student-home")
    assert "lti13:student-0001" in await page.content()


async def test_a_bookmarked_launch_url_explains_where_to_open_the_hub(dev_hub: Hub) -> None:
    async with dev_hub.client() as c:
        for path in ("/hub/lti/launch", "/hub/lti13/oauth_callback"):
            r = await c.get(path)
            assert r.status_code == 405, r.text
            assert r.headers["Allow"] == "POST"
            assert "Go to your course in the LMS and open the hub from there." in r.text
    assert "GET of the LTI launch URL /hub/lti/launch" in dev_hub.log_path.read_text()


async def test_a_launch_without_id_token_is_a_plain_400(dev_hub: Hub) -> None:
    async with dev_hub.client() as c:
        r = await c.post("/hub/lti13/oauth_callback", data={"state": "x"})
    assert r.status_code == 400, r.text
    assert "The launch carries no id_token; open the hub again from the LMS." in r.text


@pytest.mark.browser
async def test_the_login_page_links_to_the_lms(dev_hub: Hub, dev_lms: LMSSimulator, page: Page) -> None:
    await page.goto(f"{dev_hub.url}/hub/login")
    link = page.locator("p.hubkit-lms a").first
    assert await link.get_attribute("href") == dev_lms.url
    await screenshot(page, "dev-login-page-lms-link")
    await link.click()
    await page.wait_for_selector("text=Module 1: Python notebooks")


async def test_the_sample_course_shows_its_roster_gradebook_and_link_buttons(
    dev_hub: Hub, dev_lms: LMSSimulator
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        final = await _follow_forms(client, dev_lms.url + "/launch/13/instructor")  # syncs the roster
        page = (await client.get(dev_lms.url)).text
    assert final.status_code == 200, final.text[:500]
    students = (await dev_hub.api("GET", "/groups/course:sample-course-101:student"))["users"]
    assert "lti13:student-0002" in students  # on the roster, never launched
    assert "lti13:student-0003" not in students  # inactive
    for text in ("Roster", "Gradebook", "Add a Jupyter link", "Open the hub inside this course page"):
        assert text in page
    assert "student-0003</td><td>Learner</td><td>Inactive" in page
