"""Must-show 4: Chromium loads the hub's login page; a screenshot is saved."""

from __future__ import annotations

from playwright.async_api import Page

from hubkit_testing.browser import screenshot
from hubkit_testing.hub import Hub


async def test_login_page_renders_and_logs_in(kube_hub: Hub, page: Page) -> None:
    await page.goto(f"{kube_hub.url}/hub/login")
    assert await page.locator("input[name=username]").is_visible()
    assert await page.locator("input[name=password]").is_visible()
    shot = await screenshot(page, "hub-login")
    assert shot.stat().st_size > 1000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    await page.fill("input[name=username]", "carol")
    await page.fill("input[name=password]", "hubkit")
    await page.click("[type=submit]")
    await page.wait_for_url("**/user/carol/**", timeout=120_000)
    await screenshot(page, "hub-carol-server")
    await kube_hub.stop_server("carol")
