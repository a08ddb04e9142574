"""`make dev` (hubkit-dev): a usable hub with HubKitSpawner, and nothing left after Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from hubkit_testing.processes import free_port, port_is_open


async def _wait_ready(client: httpx.AsyncClient, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = (await client.get("/hub/api/user")).json()
        if model.get("servers", {}).get("", {}).get("ready"):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"the dev hub's server for {model.get('name')} never became ready")


async def test_dev_hub_spawns_with_hubkit_spawner_and_stops_cleanly(tmp_path: Path) -> None:
    port, lms_port = free_port(), free_port()
    log = (tmp_path / "dev.log").open("w+")
    argv = ["--port", str(port), "--lms-port", str(lms_port), "--workdir", str(tmp_path / "dev")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubkit_testing.dev", *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C" not in (tmp_path / "dev.log").read_text():
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, "make dev did not come up in 120 s"
            time.sleep(0.2)
        banner = (tmp_path / "dev.log").read_text()
        assert f"http://127.0.0.1:{port}" in banner
        assert 'password "hubkit"' in banner
        assert f"http://127.0.0.1:{lms_port}" in banner
        assert 'consumer key "hubkit-dev", secret "hubkit-dev-secret"' in banner

        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=30
        ) as c:
            await c.get("/hub/local/login")
            r = await c.post(
                "/hub/local/login",
                data={"username": "admin", "password": "hubkit", "_xsrf": c.cookies.get("_xsrf", "")},
            )
            assert r.status_code == 200
            # make dev now shows HubKit's spawn form (issue 22): submit it with its default profile.
            xsrf = next(ck.value for ck in c.cookies.jar if ck.name == "_xsrf" and ck.path.startswith("/hub"))
            form = await c.post("/hub/spawn", data={"profile": "course", "_xsrf": xsrf})
            assert form.status_code == 200, form.text
            await _wait_ready(c)
            spawner = (tmp_path / "dev" / "hub" / "jupyterhub.log").read_text()
            assert "Using Spawner: hubkit.spawner._spawner.HubKitSpawner" in spawner
            lms_page = await c.get(f"http://127.0.0.1:{lms_port}/")
            assert lms_page.status_code == 200
            # The logged-in user makes an API token (cookie + the hub's XSRF token), as on /hub/token.
            xsrf = next(ck.value for ck in c.cookies.jar if ck.name == "_xsrf" and ck.path.startswith("/hub"))
            made = await c.post(
                "/hub/api/users/admin/tokens", json={"note": "dev test"}, headers={"X-XSRFToken": xsrf}
            )
            assert made.status_code == 201, made.text
            auth = {"Authorization": f"token {made.json()['token']}"}
            status = await c.get("/user/admin/api/status", headers=auth)
            assert status.status_code == 200, status.text
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(90)
    assert code == 0
    assert "Stopped; nothing is left running." in (tmp_path / "dev.log").read_text()
    assert not port_is_open("127.0.0.1", port)
