"""The server-rendered spawn form: different menus per course role (Chromium), no JavaScript needed."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from hubkit_testing.browser import screenshot
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub

from .conftest import HubMaker, objects_in
from .test_spawn_e2e import PROFILE_CONFIG


async def _menu(browser: Browser, hub: Hub, user: str, shot: str) -> tuple[list[str], dict[str, list[str]]]:
    context = await browser.new_context(java_script_enabled=False, viewport={"width": 1000, "height": 900})
    page = await context.new_page()
    try:
        await page.goto(f"{hub.url}/hub/login")
        await page.fill("input[name=username]", user)
        await page.fill("input[name=password]", "hubkit")
        await page.click("[type=submit]")
        await page.goto(f"{hub.url}/hub/spawn")
        await screenshot(page, shot)
        radios = await page.query_selector_all("input[name=profile]")
        profiles = [await e.get_attribute("value") or "" for e in radios]
        options = {
            p: [
                await o.get_attribute("value") or ""
                for o in await page.query_selector_all(f"select[name='profile-option-{p}--image'] option")
            ]
            for p in profiles
        }
        return profiles, options
    finally:
        await context.close()


@pytest.mark.browser
async def test_student_and_instructor_of_a_course_see_different_menus(
    hubkit_hub: HubMaker, browser: Browser
) -> None:
    hub = hubkit_hub(PROFILE_CONFIG)
    student = await _menu(browser, hub, "student", "spawner-menu-student")
    instructor = await _menu(browser, hub, "instructor", "spawner-menu-instructor")
    assert student == (["course"], {"course": ["base"]})
    assert instructor == (["course", "research"], {"course": ["base", "grader"], "research": []})


@pytest.mark.browser
async def test_form_without_javascript_starts_the_chosen_profile(
    hubkit_hub: HubMaker, browser: Browser, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    hub = hubkit_hub(PROFILE_CONFIG)
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    try:
        await page.goto(f"{hub.url}/hub/login")
        await page.fill("input[name=username]", "instructor")
        await page.fill("input[name=password]", "hubkit")
        await page.click("[type=submit]")
        await page.goto(f"{hub.url}/hub/spawn")
        await page.check("input[name=profile][value=course]")
        await page.select_option("select[name='profile-option-course--image']", "grader")
        await page.click("form [type=submit]")
        model = await hub.wait_for_server("instructor", ready=True, timeout=120)
        assert model["servers"][""]["user_options"] == {"profile": "course", "image": "grader"}
        pod = control_plane.request(
            "GET", f"/api/v1/namespaces/{restricted_namespace}/pods/jupyter-instructor"
        )
        assert pod["spec"]["containers"][0]["image"] == "jupyter/minimal-notebook:grader"
        await hub.stop_server("instructor")
        # Next visit: the form pre-selects the last choice.
        await page.goto(f"{hub.url}/hub/spawn")
        assert await page.is_checked("input[name=profile][value=course]")
        selected = await page.input_value("select[name='profile-option-course--image']")
        assert selected == "grader"
    finally:
        await context.close()


async def test_hostile_form_posts_get_400_and_create_nothing(
    hubkit_hub: HubMaker, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    hub = hubkit_hub(PROFILE_CONFIG)
    client = await hub.login("student")
    try:
        xsrf = client.cookies.get("_xsrf") or ""
        cases = {
            "The form field 'evil' is not part of this form; reload the page.": {
                "profile": "course",
                "evil": "1",
            },
            "The form field 'profile-option-course--image' is too long; use at most 256 characters.": {
                "profile": "course",
                "profile-option-course--image": "x" * 5000,
            },
            "You may not use &#39;grader&#39; for &#39;image&#39;; you may pick: base.": {
                "profile": "course",
                "profile-option-course--image": "grader",
            },
            "You may not use the profile &#39;research&#39;; you may pick: course.": {"profile": "research"},
        }
        for sentence, form in cases.items():
            r = await client.post("/hub/spawn", data={"_xsrf": xsrf, **form})
            assert r.status_code == 400, (form, r.status_code)
            assert sentence.replace("'", "&#39;") in r.text or sentence in r.text
        assert objects_in(control_plane, restricted_namespace) == {"pods": [], "configmaps": []}
    finally:
        await client.aclose()
