"""The hub inside an LMS iframe, in real Chromium, across two https sites (issue 17, framing).

``lms.test`` (the LMS simulator) and ``hub.test`` (JupyterHub + configurable-http-proxy) are both
loopback, mapped by Chromium's host resolver rules, served over https with the test CA's certificate.
A third site, ``other.test`` (the simulator under another name), must not be able to frame the hub.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, ConsoleMessage, Frame, Page
from traitlets.config import Config

from hubkit.auth import HubKitLTI13Authenticator, framing
from hubkit.spawner.cli import offline_kubeconfig, offline_spawner
from hubkit_testing.browser import chromium_profile, screenshot, site_args
from hubkit_testing.certs import PKI, make_pki, server_tls
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.lms_simulator import SAMPLE_PEOPLE, LMSConfig, LMSSimulator
from hubkit_testing.processes import ManagedProcess, free_port
from hubkit_testing.tools import singleuser_env

SITES = ("hub.test", "lms.test", "other.test")
STUDENT = SAMPLE_PEOPLE["student"]
PLATFORM_BASE = {"client_ids": ["c"], "authorize_url": "https://lms.test/a", "jwks_url": "https://lms.test/k"}


@dataclass
class Sites:
    pki: PKI
    lms: LMSSimulator
    hub: Hub


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    work = tmp_path_factory.mktemp("iframe")
    pki = make_pki(work / "pki", ["127.0.0.1"], list(SITES))
    lms = LMSSimulator(LMSConfig(hub_url="https://hub.test:1"), host="lms.test", tls=server_tls(pki)).start()
    platform = {
        lms.issuer: {
            "client_ids": [lms.config.client_id],
            "authorize_url": lms.authorize_url,
            "jwks_url": lms.jwks_url,
            "deployment_ids": [lms.config.deployment_id],
            "frame_origins": [lms.url],
        }
    }
    config = f"""
c.JupyterHub.authenticator_class = "hubkit-lti13"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.HubKitLTI13Authenticator.platforms = {platform!r}
c.HubKitLTI13Authenticator.username_key = "sub"
c.HubKitLTI13Authenticator.id_range = (3004000, 3004999)
c.HubKitLTI13Authenticator.iframe_cookies = True
c.JupyterHub.tornado_settings = {{"cookie_options": {{"samesite": "None", "secure": True}}}}
# JupyterLab from the single-user "image" venv, as a local process with the frame policy HubKitSpawner
# would pass (its arguments are checked against HubKitSpawner below).
c.JupyterHub.spawner_class = "simple"
c.Spawner.cmd = [{str(singleuser_env() / "bin" / "jupyterhub-singleuser")!r}]
c.Spawner.args = ["--allow-root", *{framing.singleuser_args([lms.url])!r}]
c.Spawner.default_url = "/lab"
c.SimpleLocalProcessSpawner.home_dir_template = {str(work / "homes" / "{username}")!r}
"""
    # The hub fetches the LMS's keys over https from loopback: it trusts the test CA.
    env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32), "SSL_CERT_FILE": str(pki.ca_cert)}
    hub = Hub(HubOptions(workdir=work / "hub", config=config, env=env, tls=pki))
    try:
        hub.start()
        lms.config.hub_url = hub.public_url("hub.test")
        yield Sites(pki, lms, hub)
    finally:
        hub.stop()
        lms.stop()


@pytest_asyncio.fixture
async def site_browser(sites: Sites, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with chromium_profile(tmp_path / "profile", *site_args(SITES, sites.pki.serving_cert)) as browser:
        yield browser


@pytest_asyncio.fixture
async def cookie_blocking_browser(sites: Sites, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    args = site_args(SITES, sites.pki.serving_cert)
    async with chromium_profile(tmp_path / "profile", *args, third_party_cookies=False) as browser:
        yield browser


async def new_page(browser: BrowserContext) -> Page:
    return await browser.new_page()


def tool_frame(page: Page) -> Frame:
    frame = page.frame(name="tool")
    assert frame is not None, [f.url for f in page.frames]
    return frame


async def clear_student(hub: Hub) -> None:
    async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
        await c.delete(f"/hub/api/users/{STUDENT.user_id}")


async def test_hub_csp_names_the_registered_lms_only(sites: Sites) -> None:
    async with sites.hub.client() as c:
        r = await c.get("/hub/login")
    policy = r.headers["Content-Security-Policy"]
    assert policy.startswith(f"frame-ancestors 'self' {sites.lms.url};"), policy
    assert "other.test" not in policy


async def test_an_lti13_launch_inside_the_lms_frame_logs_the_student_in(
    sites: Sites, site_browser: BrowserContext
) -> None:
    await clear_student(sites.hub)
    page = await new_page(site_browser)
    await page.goto(f"{sites.lms.url}/frame/13/student")
    frame = tool_frame(page)
    await frame.wait_for_url(re.compile(r".*/hub/home$"), timeout=30_000)
    await frame.get_by_text(STUDENT.user_id).first.wait_for(timeout=10_000)
    assert frame.url.startswith(sites.hub.public_url("hub.test"))
    await screenshot(page, "lti13-launch-inside-lms-iframe")
    model = await sites.hub.api("GET", f"/users/{STUDENT.user_id}")
    assert model["groups"] == ["course:sample-course-101:student"]

    # The student starts their server inside the frame: JupyterLab renders there.
    await frame.get_by_text("Start My Server").click()
    await frame.wait_for_url(re.compile(r".*/user/[^/]+/lab.*"), timeout=90_000)
    await frame.locator("#jp-main-dock-panel").wait_for(timeout=60_000)
    await screenshot(page, "lti13-jupyterlab-inside-lms-iframe")
    await sites.hub.stop_server(STUDENT.user_id)


async def test_with_third_party_cookies_blocked_open_in_a_new_window_logs_in_once(
    sites: Sites, cookie_blocking_browser: BrowserContext
) -> None:
    await clear_student(sites.hub)
    page = await new_page(cookie_blocking_browser)
    await page.goto(f"{sites.lms.url}/frame/13/student")
    frame = tool_frame(page)
    button = frame.get_by_role("button", name="Open in a new window")
    await button.wait_for(timeout=30_000)
    assert "does not let the hub keep you signed in" in await frame.content()
    token = await frame.locator("input[name=token]").get_attribute("value")
    await screenshot(page, "lti13-iframe-cookies-blocked")

    async with cookie_blocking_browser.expect_page() as popup_info:
        await button.click()
    popup = await popup_info.value
    await popup.wait_for_url(re.compile(r".*/hub/home$"), timeout=30_000)
    await popup.get_by_text(STUDENT.user_id).first.wait_for(timeout=10_000)
    await screenshot(popup, "lti13-new-window-after-blocked-cookies")
    assert (await sites.hub.api("GET", f"/users/{STUDENT.user_id}"))["name"] == STUDENT.user_id

    # The token carried that one launch: posting it again is a replay.
    async with sites.hub.client() as c:
        again = await c.post("/hub/lti13/new_window", data={"token": token or ""})
        altered = await c.post("/hub/lti13/new_window", data={"token": (token or "") + "x"})
    assert again.status_code == 401, again.text
    assert "already used" in again.text
    assert altered.status_code == 401, altered.text
    assert "expired or was altered" in altered.text


async def test_a_page_of_a_third_site_cannot_frame_the_hub(
    sites: Sites, site_browser: BrowserContext
) -> None:
    refusals: list[str] = []
    page = await new_page(site_browser)
    page.on("console", lambda m: refusals.append(m.text) if _is_frame_refusal(m) else None)

    await page.goto(f"{sites.lms.url}/frame-hub")  # the registered LMS: the hub's login page shows
    await tool_frame(page).wait_for_load_state()
    assert await _frame_title(tool_frame(page)) == "JupyterHub"
    assert refusals == []

    await page.goto(f"{sites.lms.site_url('other.test')}/frame-hub")
    await page.wait_for_timeout(1000)
    await screenshot(page, "hub-refused-in-third-site-iframe")
    assert any("frame-ancestors" in r for r in refusals), refusals
    assert await _frame_title(tool_frame(page)) != "JupyterHub"


def _is_frame_refusal(message: ConsoleMessage) -> bool:
    return "Refused to frame" in message.text or "frame-ancestors" in message.text


async def _frame_title(frame: Frame) -> str:
    try:
        return await frame.title()
    except Exception as e:  # a refused frame may hold Chromium's error page, or nothing scriptable
        return f"(not readable: {e})"


async def test_single_user_servers_get_the_same_frame_ancestors(sites: Sites, tmp_path: Path) -> None:
    # HubKitSpawner adds the authenticator's frame policy to the pod's arguments ...
    authenticator = HubKitLTI13Authenticator(
        platforms={sites.lms.issuer: {**PLATFORM_BASE, "frame_origins": [sites.lms.url]}}
    )
    config = Config()
    config.KubeSpawner.cmd = ["jupyterhub-singleuser"]  # as zero-to-jupyterhub sets it
    with offline_kubeconfig():
        spawner = offline_spawner(config, STUDENT.user_id, [])
    spawner.authenticator = authenticator
    pod = await spawner.get_pod_manifest()
    frame_args = [a for a in pod.spec.containers[0].args if "Content-Security-Policy" in a]
    assert len(frame_args) == 1, pod.spec.containers[0].args

    # ... and a real jupyter_server started with them answers with that policy (JupyterHub's single-user
    # extension only sets frame-ancestors 'none' where no policy is configured).
    port = free_port()
    argv = [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser"]
    argv += ["--IdentityProvider.token=hubkit-test", f"--ServerApp.root_dir={tmp_path}", "--allow-root"]
    jupyter_dirs = {f"JUPYTER_{d}_DIR": str(tmp_path / d.lower()) for d in ("CONFIG", "DATA", "RUNTIME")}
    env = dict(os.environ) | jupyter_dirs
    log = tmp_path / "server.log"
    server = ManagedProcess("jupyter-server", [*argv, *frame_args], log, env=env, cwd=tmp_path).start()
    try:
        server.wait_until(lambda: _answers(port), 60, "answering on /api/status")
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/api/status?token=hubkit-test")
    finally:
        server.stop(timeout=20)
    assert r.headers["Content-Security-Policy"].startswith(f"frame-ancestors 'self' {sites.lms.url}")

    # Without registered origins nothing is added: JupyterHub's 'none' stays.
    spawner.authenticator = HubKitLTI13Authenticator(platforms={sites.lms.issuer: PLATFORM_BASE})
    assert not [a for a in (await spawner.get_pod_manifest()).spec.containers[0].args or [] if "Policy" in a]


def _answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token=hubkit-test", timeout=1) as r:
        return bool(r.status == 200)
