"""A spawn is refused while the real hubkit-nfs-keepalive reports the home volume unhealthy."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub
from hubkit_testing.processes import ManagedProcess
from hubkit_testing.service_processes import start_tmpfs_keepalive

from .conftest import HubMaker, hub_log, objects_in

REFUSAL = "Home directories are unavailable; an administrator has been alerted; try again later."


@pytest.fixture
def keepalive(tmp_path: Path) -> Iterator[tuple[ManagedProcess, str, Path]]:
    """hubkit-nfs-keepalive probing a 512 KiB tmpfs "home" in its own mount namespace."""
    proc, url, volume = start_tmpfs_keepalive(tmp_path)
    try:
        yield proc, f"{url}/health", volume
    finally:
        proc.stop()


async def wait_state(url: str, state: str, timeout: float = 20) -> dict[str, Any]:
    body: dict[str, Any] = {}
    async with httpx.AsyncClient() as c:
        for _ in range(int(timeout / 0.1)):
            try:
                body = (await c.get(url)).json()
            except httpx.TransportError:
                body = {}
            if body.get("volumes", {}).get("home", {}).get("state") == state:
                return body
            await asyncio.sleep(0.1)
    raise AssertionError(f"the home volume never became {state}: {body}")


async def post_server(hub: Hub, user: str) -> tuple[int, str]:
    await hub.ensure_user(user)
    async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
        r = await c.post(f"/hub/api/users/{user}/server", json={})
    return r.status_code, r.json().get("message", "") if r.content else ""


async def test_unhealthy_home_refuses_the_spawn_and_a_silent_keepalive_does_not(
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    keepalive: tuple[ManagedProcess, str, Path],
) -> None:
    proc, url, volume = keepalive
    await wait_state(url, "healthy")
    config = f"c.HubKitSpawner.nfs_keepalive_url = {url!r}\nc.HubKitSpawner.nfs_keepalive_timeout = 1\n"
    hub = hubkit_hub(config)
    client = await hub.login("student")
    await client.aclose()

    remount = ["nsenter", "-t", str(proc.pid), "-m", "--", "mount", "-o", "remount,ro", str(volume)]
    assert subprocess.run(remount, check=False, timeout=30).returncode == 0
    await wait_state(url, "unhealthy")
    assert await post_server(hub, "student") == (400, REFUSAL)
    assert (await hub.api("GET", "/users/student"))["servers"] == {}
    assert objects_in(control_plane, restricted_namespace) == {"pods": [], "configmaps": []}
    log = hub_log(hub)
    assert "Refused spawn for student" in log
    assert "volume=home unhealthy_since=" in log
    assert "error='Read-only file system'" in log

    # The keepalive itself is down: that is no NFS outage, the spawn goes on (and says so in the log).
    proc.stop()
    await hub.start_server("student", timeout=120)
    assert "Spawning student without checking its NFS volumes" in hub_log(hub)
    await hub.stop_server("student")
