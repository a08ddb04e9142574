"""Playwright driving Debian's Chromium, for tests that look at pages the way a user does.

Playwright's own browser downloads are never used: the platform is hermetic, so it launches
``/usr/bin/chromium`` (installed by ``tests/platform/sysdeps.sh``) through the async API.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from .certs import spki_sha256

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container, with everything that would phone home or touch a GPU turned off.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def repo_root() -> Path:
    """The checkout's root: the nearest directory above this file that holds ``noxfile.py``."""
    for directory in Path(__file__).resolve().parents:
        if (directory / "noxfile.py").is_file():
            return directory
    raise RuntimeError(f"No noxfile.py above {__file__}; set HUBKIT_ARTIFACTS to choose where artifacts go.")


def artifacts_dir() -> Path:
    """Where test artifacts go: ``$HUBKIT_ARTIFACTS`` if set, else ``<repo root>/artifacts``."""
    override = os.environ.get("HUBKIT_ARTIFACTS")
    return Path(override) if override else repo_root() / "artifacts"


async def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as ``<artifacts>/screenshots/<name>.png`` and return its path.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` in the name become ``_``, so test ids
    such as ``test_x[alice]`` are safe to pass and cannot escape the screenshots directory.
    """
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "screenshot"
    path = artifacts_dir() / "screenshots" / f"{safe_name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=path, full_page=True)
    return path


def require_chromium(executable: Path = CHROMIUM) -> Path:
    """Return the Chromium executable, failing (never skipping) when it is absent, so gaps stay visible."""
    if not os.access(executable, os.X_OK):
        raise RuntimeError(f"{executable} is missing; run `bash tests/platform/sysdeps.sh` to install it.")
    return executable


@asynccontextmanager
async def chromium_profile(
    user_data_dir: Path, *extra_args: str, third_party_cookies: bool = True
) -> AsyncIterator[BrowserContext]:
    """A Chromium with a profile of its own in ``user_data_dir`` and ``extra_args`` (host resolver
    rules, trusted test keys). Its cookie setting is the user's choice in chrome://settings/cookies:
    third-party cookies allowed, or (``third_party_cookies=False``) blocked, which headless Chromium
    and the shared ``browser`` fixture's contexts do by default."""
    executable = require_chromium()
    mode = 0 if third_party_cookies else 1  # Chromium's CookieControlsMode: kOff, kBlockThirdParty
    prefs = {"profile": {"cookie_controls_mode": mode, "block_third_party_cookies": not third_party_cookies}}
    (user_data_dir / "Default").mkdir(parents=True, exist_ok=True)
    (user_data_dir / "Default" / "Preferences").write_text(json.dumps(prefs))
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            user_data_dir,
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_ARGS, *extra_args],
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            await context.close()


def site_args(hosts: Iterable[str], trusted_cert: Path) -> list[str]:
    """Chromium arguments for several https sites on loopback: ``hosts`` resolve to 127.0.0.1, and the
    key of the test serving certificate is trusted (that key only: ``--ignore-certificate-errors-spki-list``).
    """
    rules = ", ".join(f"MAP {host} 127.0.0.1" for host in hosts)
    return [
        f"--host-resolver-rules={rules}",
        f"--ignore-certificate-errors-spki-list={spki_sha256(trusted_cert)}",
    ]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session; pages get their own contexts."""
    executable = require_chromium()
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield instance
        finally:
            await instance.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page in its own browser context (no cookies or storage shared between tests)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield await context.new_page()
    finally:
        await context.close()
