"""Categorised tag menus in a real hub, read from docker-registry with credentials from a pull Secret.

Each mode (token auth, htpasswd Basic, anonymous) gets a hub whose spawner names the Secret in
``image_pull_secrets``: the form lists the categories, an unlisted tag is checked against the registry,
the user pod carries the Secret, and neither the password nor a token reaches a log, an event, the form
or the published menu.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser

from hubkit.spawner.pull_secrets import dockerconfigjson
from hubkit_testing.browser import screenshot
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.registry import Auth, RegistryServer

from .conftest import HubMaker, hub_log, show_form
from .test_registry_auth import CATEGORIES, MODES, PASSWORD, course_registry

REPO = "jupyter/minimal-notebook"  # the platform runs jupyter/* images from its single-user venv
SECRET = "hk-pull"


def create_pull_secret(cp: ControlPlane, namespace: str, server: RegistryServer, password: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET},
        "type": "kubernetes.io/dockerconfigjson",
        "data": dockerconfigjson({server.host: ("puller", password)}),
    }
    cp.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body)


def menu_config(server: RegistryServer) -> str:
    registry = {"url": server.url, "repository": REPO, "recommended": "recommended", "categories": CATEGORIES}
    return f"""
c.HubKitSpawner.image_pull_secrets = [{SECRET!r}]
c.HubKitSpawner.profile_list = [{{
    "display_name": "Python", "slug": "py",
    "profile_options": {{"image": {{
        "display_name": "Image",
        "registry": {registry!r},
        "unlisted_choice": {{"enabled": True, "display_name": "Another tag"}},
    }}}},
}}]
"""


def _secrets_of(server: RegistryServer) -> list[str]:
    issued = server.tokens.issued if server.tokens is not None else []
    return [PASSWORD, server.pusher_password, *issued]


async def _post_form(hub: Any, user: str, fields: dict[str, str]) -> tuple[int, str]:
    client = await hub.login(user)
    try:
        xsrf = client.cookies.get("_xsrf") or ""
        r = await client.post("/hub/spawn", data={"_xsrf": xsrf, **fields})
        return r.status_code, r.text
    finally:
        await client.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_menu_unlisted_check_and_pod_with_credentials_from_a_secret(
    mode: Auth,
    tmp_path: Path,
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
) -> None:
    with course_registry(tmp_path, mode, REPO) as (server, _repo):
        create_pull_secret(control_plane, restricted_namespace, server, PASSWORD)
        hub = hubkit_hub(menu_config(server))
        html = await show_form(hub, "student")
        headings = [line.split('"')[1] for line in html.splitlines() if "<optgroup label=" in line]
        assert headings == [
            "Recommended",
            "Releases",
            "Weekly builds",
            "Daily builds",
            "May take a while to start",
        ]
        assert "Recommended (Weekly 2024 week 7)" in html
        assert "Release 1.2.3" in html
        assert "Weekly 2024 week 4" in html
        assert "Weekly 2024 week 3" not in html

        field = "profile-option-py--image"
        status, text = await _post_form(
            hub,
            "student",
            {"profile": "py", field: "--unlisted-choice", f"{field}--unlisted-choice": "w_2099_1"},
        )
        assert status == 400
        assert f"The image tag &#39;w_2099_1&#39; does not exist in {REPO}; pick one of: recommended" in text

        status, _ = await _post_form(
            hub,
            "student",
            {"profile": "py", field: "--unlisted-choice", f"{field}--unlisted-choice": "w_2024_1"},
        )
        assert status == 200
        model = await hub.wait_for_server("student", ready=True, timeout=150)
        assert model["servers"][""]["user_options"]["image--unlisted-choice"] == "w_2024_1"
        pod = control_plane.request("GET", f"/api/v1/namespaces/{restricted_namespace}/pods/jupyter-student")
        assert pod["spec"]["containers"][0]["image"] == f"{server.host}/{REPO}:w_2024_1"
        assert pod["spec"]["imagePullSecrets"] == [{"name": SECRET}]

        published = control_plane.request(
            "GET", f"/api/v1/namespaces/{restricted_namespace}/configmaps/hubkit-image-menu"
        )
        images = {i["image"] for i in json.loads(published["data"]["menu.json"])["images"]}
        prepulled = {
            f"{server.host}/{REPO}:{t}"
            for t in ["recommended", "r1_10_0", "w_2024_7", "w_2024_6", "d_2024_03_08"]
        }
        assert images == prepulled, "the older tags are listed in the form but not prepulled"
        await hub.stop_server("student")

        events = json.dumps(control_plane.request("GET", f"/api/v1/namespaces/{restricted_namespace}/events"))
        for secret in _secrets_of(server):
            for where, text in (
                ("hub log", hub_log(hub)),
                ("form", html),
                ("menu", json.dumps(published)),
                ("events", events),
            ):
                assert secret not in text, f"a credential or token is in the {where}"
        if mode == "token":
            assert server.tokens is not None
            assert server.tokens.issued, "the hub did use tokens"


async def test_wrong_password_logs_one_sentence_and_offers_the_recommended_tag(
    tmp_path: Path, hubkit_hub: HubMaker, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    with course_registry(tmp_path, "token", REPO) as (server, _repo):
        create_pull_secret(control_plane, restricted_namespace, server, "wrong-" + PASSWORD)
        hub = hubkit_hub(menu_config(server))
        for _ in range(2):
            html = await show_form(hub, "student")
            options = [line for line in html.splitlines() if "<option value=" in line]
            assert len(options) == 2, options  # the recommended tag and "Other..."
            assert 'value="recommended"' in options[0]
            assert ">Recommended</option>" in options[0]
        lines = [line for line in hub_log(hub).splitlines() if "Image menu py/image" in line]
        assert len(lines) == 1, lines
        assert lines[0].endswith(
            "Image menu py/image shows only its recommended tag recommended: the token server of "
            f"{REPO} at {server.host} refused the credentials of user 'puller' from secret {SECRET} (401); "
            "check the secret's username and password"
        )
        assert "wrong-" + PASSWORD not in hub_log(hub)


@pytest.mark.browser
async def test_screenshot_of_a_categorised_tag_menu(
    tmp_path: Path,
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    browser: Browser,
) -> None:
    with course_registry(tmp_path, "token", REPO) as (server, _repo):
        create_pull_secret(control_plane, restricted_namespace, server, PASSWORD)
        hub = hubkit_hub(menu_config(server))
        context = await browser.new_context(java_script_enabled=False, viewport={"width": 900, "height": 700})
        page = await context.new_page()
        try:
            await page.goto(f"{hub.url}/hub/login")
            await page.fill("input[name=username]", "student")
            await page.fill("input[name=password]", "hubkit")
            await page.click("[type=submit]")
            await page.goto(f"{hub.url}/hub/spawn")
            await screenshot(page, "spawner-tag-menu")
            select = "select[name='profile-option-py--image']"
            assert await page.input_value(select) == "recommended"
            labels = [
                await g.get_attribute("label") for g in await page.query_selector_all(f"{select} optgroup")
            ]
            assert labels == [
                "Recommended",
                "Releases",
                "Weekly builds",
                "Daily builds",
                "May take a while to start",
            ]
            later = await page.query_selector_all(
                f"{select} optgroup[label='May take a while to start'] option"
            )
            assert [await o.get_attribute("value") for o in later] == ["r1_2_3", "w_2024_5", "w_2024_4"]
        finally:
            await context.close()


async def test_a_registry_that_goes_down_leaves_the_last_good_list(
    tmp_path: Path, hubkit_hub: HubMaker, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    with course_registry(tmp_path, "htpasswd", REPO) as (server, _repo):
        create_pull_secret(control_plane, restricted_namespace, server, PASSWORD)
        hub = hubkit_hub(menu_config(server) + "\nc.HubKitSpawner.registry_cache_ttl = 3\n")
        before = await show_form(hub, "student")
        assert "Recommended (Weekly 2024 week 7)" in before
    # The registry (and its paging front) is stopped now: nothing answers on its port.
    await asyncio.sleep(3.2)  # the cached list expires; the next form tries the registry
    for _ in range(2):
        after = await show_form(hub, "student")
        assert _options(after) == _options(before), "the last good list, alias included"
    lines = [line for line in hub_log(hub).splitlines() if "Image menu py/image" in line]
    assert len(lines) == 1, lines
    assert re.search(
        rf"Image menu py/image shows the tag list of \d+ s ago: {REPO} at {server.host} did not answer: "
        r"ConnectError$",
        lines[0],
    ), lines[0]


def _options(html: str) -> list[str]:
    return [line.strip() for line in html.splitlines() if "<option value=" in line]
