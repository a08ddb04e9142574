"""The browser fixtures drive Debian's Chromium: pages load, scripts run, screenshots land on disk."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.async_api import Page

from hubkit_testing.browser import artifacts_dir, repo_root, require_chromium, screenshot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>HubKit fixture page</title></head>
<body>
  <h1 id="greeting">Hello from the test server</h1>
  <button id="toggle" onclick="document.getElementById('greeting').textContent = 'Clicked by Chromium'">
    Change it
  </button>
</body></html>
"""


class FixedPage(BaseHTTPRequestHandler):
    """Serves the one HTML page above for every GET, and keeps request logs out of test output."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HTML)))
        self.end_headers()
        self.wfile.write(HTML)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The URL of a tiny HTTP server on a random loopback port, run in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixedPage)
    thread = threading.Thread(target=server.serve_forever, name="fixed-page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_page_loads_title_and_text(page: Page, site: str) -> None:
    response = await page.goto(site)
    assert response is not None
    assert response.status == 200
    assert await page.title() == "HubKit fixture page"
    assert await page.text_content("#greeting") == "Hello from the test server"


async def test_clicking_runs_the_page_script(page: Page, site: str) -> None:
    await page.goto(site)
    await page.click("#toggle")
    assert await page.text_content("#greeting") == "Clicked by Chromium"


@pytest.mark.parametrize("run", ["first", "second"])
async def test_pages_do_not_share_state(page: Page, site: str, run: str) -> None:
    """Whichever run goes second would see the first run's marker if contexts leaked between tests."""
    await page.goto(site)
    assert await page.evaluate("localStorage.getItem('hubkit-marker')") is None
    await page.evaluate(f"localStorage.setItem('hubkit-marker', '{run}')")
    assert await page.evaluate("localStorage.getItem('hubkit-marker')") == run


async def test_screenshot_writes_a_png_under_the_repo_artifacts(page: Page, site: str) -> None:
    await page.goto(site)
    path = await screenshot(page, "browser-fixture")
    assert path == repo_root() / "artifacts" / "screenshots" / "browser-fixture.png"
    assert (repo_root() / "noxfile.py").is_file()
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000


async def test_screenshot_honours_the_artifacts_override(
    page: Page, site: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBKIT_ARTIFACTS", str(tmp_path))
    await page.goto(site)
    path = await screenshot(page, "../test_x[alice]")
    assert artifacts_dir() == tmp_path
    assert path == tmp_path / "screenshots" / "_test_x_alice_.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_missing_chromium_fails_with_the_fix_in_the_message(tmp_path: Path) -> None:
    with pytest.raises(
        RuntimeError, match=r"chromium is missing; run `bash tests/platform/sysdeps\.sh` to install it"
    ):
        require_chromium(tmp_path / "chromium")
