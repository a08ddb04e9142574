"""A refused request never locks a user out: refused user_options are never kept in the hub database.

On a hub configured like ``make dev`` (LTI launches from the LMS simulator, the course menu with an
instructor-only GPU profile), in Chromium: a student posts the GPU profile, reads the refusal, then starts
normally from the home page and from an LMS relaunch; the same after a 1 MB REST value; the admin panel
stays usable.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page

from hubkit_testing.browser import screenshot
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.dev import DEV_CONFIG
from hubkit_testing.dev_spawner import (
    DevSpawnerSetup,
    create_course_storage,
    dev_spawner_config,
    push_dev_images,
)
from hubkit_testing.hub import Hub
from hubkit_testing.kubespawner_config import kubespawner_config
from hubkit_testing.lms_simulator import LMSSimulator, dev_hub_config, dev_hub_env, start_dev_lms
from hubkit_testing.processes import free_port
from hubkit_testing.pytest_plugin import HubFactory
from hubkit_testing.registry import RegistryServer

STUDENT = "lti:student-0001"
REFUSAL = "You may not use the profile 'gpu'; you may pick: course."


@pytest.fixture
def dev_lms() -> Iterator[LMSSimulator]:
    sim = start_dev_lms(hub_url="http://127.0.0.1:1", port=free_port())
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def dev_like_hub(
    hub_factory: HubFactory,
    control_plane: ControlPlane,
    namespace: str,
    registry: RegistryServer,
    dev_lms: LMSSimulator,
    tmp_path: Path,
) -> Iterator[Hub]:
    push_dev_images(registry)
    create_course_storage(control_plane, namespace, tmp_path / "courses")
    setup = DevSpawnerSetup(registry, tmp_path / "courses", namespace)
    config = (
        kubespawner_config(control_plane, namespace, "hubkit")
        + DEV_CONFIG
        + dev_spawner_config(setup)
        + dev_hub_config(dev_lms)
    )
    hub = hub_factory(
        config=config,
        hub_ip=control_plane.gateway,
        env={"KUBECONFIG": str(control_plane.admin_kubeconfig), **dev_hub_env()},
    )
    dev_lms.config.hub_url = hub.url
    try:
        yield hub
    finally:
        control_plane.request("DELETE", f"/api/v1/persistentvolumes/dev-courses-{namespace}")


def saved_options(hub: Hub) -> list[str]:
    """Every user_options value in the hub database, as stored."""
    db = next(hub.options.workdir.rglob("jupyterhub.sqlite"))
    with sqlite3.connect(db) as conn:
        return [str(row[0]) for row in conn.execute("SELECT user_options FROM spawners")]


async def launch_from_lms(page: Page, lms: LMSSimulator, role: str = "student") -> None:
    await page.goto(lms.url)
    await page.click(f"button:has-text('Launch as {role} of Sample Course 101 (LTI 1.1)')")
    await page.wait_for_url("**/hub/spawn**")


async def start_from_form(page: Page, hub: Hub) -> str:
    """Submit the spawn form as it is; returns the profile the started server uses."""
    await page.click("form [type=submit]")
    model = await hub.wait_for_server(STUDENT, ready=True, timeout=150)
    return str(model["servers"][""]["user_options"].get("profile"))


@pytest.mark.browser
async def test_a_refused_request_never_locks_a_user_out(
    dev_like_hub: Hub, dev_lms: LMSSimulator, browser: Browser
) -> None:
    hub = dev_like_hub
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    try:
        # 1. An edited form post of the instructor-only GPU profile is refused on the form page.
        await launch_from_lms(page, dev_lms)
        assert await page.locator("input[name=profile]").evaluate_all("es => es.map(e => e.value)") == [
            "course"
        ]
        await page.eval_on_selector("input[name=profile]", "e => { e.value = 'gpu'; e.checked = true; }")
        await page.click("form [type=submit]")
        await page.wait_for_selector(f"text={REFUSAL}")
        await screenshot(page, "refused-options-form-refusal")
        assert not any("gpu" in value for value in saved_options(hub))
        log = hub.log_path.read_text()
        assert f"Refused spawn form of {STUDENT}" in log
        assert "option='profile' value='gpu'" in log

        # 2. "Start My Server" from the home page works.
        await page.goto(f"{hub.url}/hub/home")
        await page.click("#start")
        await page.wait_for_url("**/hub/spawn**")
        assert await start_from_form(page, hub) == "course"
        await hub.stop_server(STUDENT)

        # 3. An LMS relaunch works too.
        await launch_from_lms(page, dev_lms)
        assert await start_from_form(page, hub) == "course"
        await hub.stop_server(STUDENT)

        # 4. A 1 MB REST value is refused, never stored, and the next starts work.
        async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
            big = await c.post(f"/hub/api/users/{STUDENT}/server", json={"profile": "x" * 1_000_000})
            assert big.status_code == 400, big.text
            assert big.json()["message"] == "Server option 'profile' is too long; use at most 256 characters."
            assert max(len(value) for value in saved_options(hub)) < 1000
            assert "option='profile' value='xxxx" in hub.log_path.read_text()
            again = await c.post(f"/hub/api/users/{STUDENT}/server", json={})
            assert again.status_code in (201, 202), again.text
        await hub.wait_for_server(STUDENT, ready=True, timeout=150)
        await hub.stop_server(STUDENT)
        await launch_from_lms(page, dev_lms)
        assert await start_from_form(page, hub) == "course"
    finally:
        await context.close()

    # 5. The admin panel stays usable: the user's row and its buttons are on screen.
    admin = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await admin.new_page()
    try:
        await page.goto(f"{hub.url}/hub/local/login")
        await page.fill("input[name=username]", "admin")
        await page.fill("input[name=password]", "hubkit")
        await page.click("[type=submit]")
        await page.goto(f"{hub.url}/hub/admin")
        row = page.locator(f"tr:has-text('{STUDENT}')").first
        await row.wait_for()
        button = row.locator("button:has-text('Stop Server')").first
        await button.wait_for()
        box = await button.bounding_box()
        assert box is not None
        assert 0 <= box["x"] <= box["x"] + box["width"] <= 1280, box
        await screenshot(page, "refused-options-admin-panel")
    finally:
        await admin.close()


async def test_progress_names_every_step_the_start_waits_on(dev_like_hub: Hub) -> None:
    hub = dev_like_hub
    await hub.ensure_user("lti:progress-1")
    headers = {"Authorization": f"token {hub.admin_token}"}
    async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=180) as c:
        # The REST start answers after up to 10 s (slow_spawn_timeout); watch the progress meanwhile.
        post = asyncio.ensure_future(c.post("/hub/api/users/lti:progress-1/server", json={}))
        while (await hub.api("GET", "/users/lti:progress-1")).get("pending") != "spawn":
            assert not post.done(), post.result().text
            await asyncio.sleep(0.05)
        progress = await c.get("/hub/api/users/lti:progress-1/server/progress")
        r = await post
        assert r.status_code in (201, 202), r.text
    events = [json.loads(line[5:]) for line in progress.text.splitlines() if line.startswith("data:")]
    messages = [str(e.get("message", "")) for e in events]
    steps = [
        "Checking your server options.",
        "Asking Kubernetes for a machine to run your server.",
        "A machine was found for your server.",
        "Your server has started; waiting for it to answer.",
    ]
    node_steps = {
        "Setting up your server on process-node-1: network, storage and files.",
        "Your server's process is running on process-node-1.",
    }
    shown = [m for m in messages if m in steps]
    assert sorted(shown) == sorted(steps), messages  # each once
    # The spawner's own steps in order; the scheduler's event may be delivered late under load.
    assert [m for m in shown if m != steps[2]] == [steps[0], steps[1], steps[3]], messages
    assert node_steps & set(messages), messages  # the node's part (setup is often quicker than a look)
    percents = [int(e["progress"]) for e in events]
    assert percents == sorted(percents), percents
    assert events[-1].get("ready") is True, events[-1]
    await hub.stop_server("lti:progress-1")


async def test_a_saved_value_that_no_longer_validates_is_dropped(dev_like_hub: Hub) -> None:
    """A value saved before this rule (or before a config change) is dropped; the start goes on."""
    hub = dev_like_hub
    await hub.start_server(STUDENT, {"profile": "course"}, timeout=150)
    await hub.stop_server(STUDENT)
    hub.stop()
    db = next(hub.options.workdir.rglob("jupyterhub.sqlite"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE spawners SET user_options = ?", (json.dumps({"profile": "gpu"}),))
    hub.start()
    async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
        r = await c.post(f"/hub/api/users/{STUDENT}/server")  # no body: the saved options apply
        assert r.status_code in (201, 202), r.text
    model = await hub.wait_for_server(STUDENT, ready=True, timeout=150)
    assert model["servers"][""]["user_options"] == {}
    assert "Dropped the saved server options of lti:student-0001, which are no longer valid" in (
        hub.log_path.read_text()
    )
    assert saved_options(hub) == ["{}"]
    await hub.stop_server(STUDENT)
