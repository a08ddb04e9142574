"""The NFS keepalive against real NFS-Ganesha (protocol mode, libnfs) and real directories."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from hubkit.services.common import SettingsError, load_settings
from hubkit.services.nfs_keepalive import (
    UNAVAILABLE_MESSAGE,
    Keepalive,
    KeepaliveSettings,
    VolumeSettings,
    unavailable_volumes,
)
from hubkit_testing.hub import Hub
from hubkit_testing.nfs import GaneshaServer
from hubkit_testing.processes import ManagedProcess, free_port
from hubkit_testing.service_processes import start_tmpfs_keepalive

KEEPALIVE_BIN = str(Path(sys.executable).parent / "hubkit-nfs-keepalive")
PREFIX = "HUBKIT_NFS_KEEPALIVE_"


def _sample(k: Keepalive, name: str, labels: dict[str, str]) -> float:
    return k.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_protocol_probe_keeps_ganesha_awake_and_detects_a_hang(ganesha: GaneshaServer) -> None:
    volume = VolumeSettings(name="home", mode="nfs", url=ganesha.url, timeout_seconds=1.5)
    k = Keepalive(KeepaliveSettings(volumes=[volume], file_name=".probe-protocol"), CollectorRegistry())

    ok = await k.probe_once("home")
    assert ok.ok, ok.error
    assert set(ok.latencies) == {"connect", "write", "fsync", "rename", "read", "stat"}
    written = (ganesha.export_dir / ".probe-protocol").read_text()
    assert written.startswith("hubkit-nfs-keepalive ")
    assert not (ganesha.export_dir / ".probe-protocol.new").exists()
    assert _sample(k, "hubkit_nfs_probe_step_seconds_count", {"volume": "home", "step": "fsync"}) == 1

    ganesha.pause()
    try:
        hung = await k.probe_once("home")
        again = await k.probe_once("home")
    finally:
        ganesha.resume()
    assert hung.timed_out
    assert hung.error == f"probe timed out after 1.5 s in step {hung.failed_step}"
    healthy, body = k.status()
    assert not healthy
    home = body["volumes"]["home"]
    assert home["state"] == "unhealthy"
    assert home["unhealthy_since"] == hung.finished.isoformat()  # the first failure, not the latest
    assert home["consecutive_failures"] == 2
    assert again.timed_out
    assert unavailable_volumes(body, ["home", "scratch"]) == ["home"]
    kinds = {"volume": "home", "step": hung.failed_step or "", "kind": "timeout"}
    assert _sample(k, "hubkit_nfs_probe_failures_total", kinds) >= 1
    assert _sample(k, "hubkit_nfs_volume_healthy", {"volume": "home"}) == 0

    recovered = await k.probe_once("home")
    assert recovered.ok, recovered.error
    healthy, body = k.status()
    assert healthy
    assert body["volumes"]["home"]["unhealthy_since"] is None
    assert body["volumes"]["home"]["last_success"] == recovered.finished.isoformat()
    for _ in range(50):  # the killed workers are reaped in the background
        if not k.runners["home"].stuck:
            break
        await asyncio.sleep(0.1)
    assert not k.runners["home"].stuck
    assert (ganesha.export_dir / ".probe-protocol").read_text() != written


async def test_directory_probe_abandons_a_blocked_write_and_sees_recovery(tmp_path: Path) -> None:
    volume = VolumeSettings(name="scratch", path=tmp_path)
    k = Keepalive(KeepaliveSettings(volumes=[volume], timeout_seconds=1), CollectorRegistry())
    assert (await k.probe_once("scratch")).ok
    # A FIFO where the probe writes: open() blocks until a reader comes, like a write to a wedged mount.
    blocker = tmp_path / ".hubkit-keepalive.new"
    os.mkfifo(blocker)
    stuck = await k.probe_once("scratch")
    assert stuck.timed_out
    assert stuck.failed_step == "write"
    assert set(stuck.latencies) == set()
    blocker.unlink()
    assert (await k.probe_once("scratch")).ok
    assert k.status()[0]
    body = k.status()[1]["volumes"]["scratch"]
    assert body["consecutive_failures"] == 0
    assert body["latency_seconds"]["write"] > 0


@pytest.fixture
def private_tmpfs_service(tmp_path: Path) -> Iterator[Callable[[str], tuple[ManagedProcess, str, Path]]]:
    """Run hubkit-nfs-keepalive in its own mount namespace over a 512 KiB tmpfs (nothing leaks out)."""
    procs: list[ManagedProcess] = []

    def start(config_extra: str) -> tuple[ManagedProcess, str, Path]:
        proc, url, volume = start_tmpfs_keepalive(tmp_path, config_extra)
        procs.append(proc)
        return proc, url, volume

    yield start
    for p in procs:
        p.stop()


async def _wait_health(url: str, want: bool, timeout: float = 20) -> dict[str, Any]:
    body: dict[str, Any] = {}
    async with httpx.AsyncClient() as c:
        for _ in range(int(timeout / 0.1)):
            try:
                r = await c.get(f"{url}/health")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            body = r.json()
            state = body["volumes"]["home"]["state"]
            if (want and state == "healthy") or (not want and state == "unhealthy"):
                assert r.status_code == (200 if want else 503)
                return body
            await asyncio.sleep(0.1)
    raise AssertionError(f"health never became {'healthy' if want else 'unhealthy'}: {body}")


def _in_namespace(proc: ManagedProcess, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", "-t", str(proc.pid), "-m", "--", *cmd],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def test_service_reports_read_only_and_full_volumes_and_their_recovery(
    private_tmpfs_service: Callable[[str], tuple[ManagedProcess, str, Path]],
) -> None:
    proc, url, volume = private_tmpfs_service("")
    await _wait_health(url, want=True)

    assert _in_namespace(proc, "mount", "-o", "remount,ro", str(volume)).returncode == 0
    body = await _wait_health(url, want=False)
    home = body["volumes"]["home"]
    assert home["failing_step"] == "write"
    assert home["error"] == "Read-only file system"
    assert not body["healthy"]
    since = home["unhealthy_since"]
    assert since is not None
    assert _in_namespace(proc, "mount", "-o", "remount,rw", str(volume)).returncode == 0
    body = await _wait_health(url, want=True)
    assert body["volumes"]["home"]["unhealthy_since"] is None
    assert body["volumes"]["home"]["last_success"] > since

    fill = _in_namespace(proc, "sh", "-c", f"cat /dev/zero > {volume}/fill")
    assert "No space left on device" in fill.stderr
    body = await _wait_health(url, want=False)
    assert body["volumes"]["home"]["error"] == "No space left on device"
    assert body["volumes"]["home"]["failing_step"] in ("write", "fsync")
    assert _in_namespace(proc, "rm", f"{volume}/fill").returncode == 0
    await _wait_health(url, want=True)

    async with httpx.AsyncClient() as c:
        metrics = (await c.get(f"{url}/metrics")).text
    assert 'hubkit_nfs_probe_failures_total{kind="error",step="write",volume="home"}' in metrics
    assert 'hubkit_nfs_volume_healthy{volume="home"} 1.0' in metrics
    assert "hubkit_nfs_last_success_timestamp_seconds" in metrics
    assert list(volume.iterdir()) == []  # the tmpfs lived only in the service's mount namespace


async def test_hub_managed_service_exposes_status_for_the_spawner(
    hub_factory: Callable[..., Hub], ganesha: GaneshaServer, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "keepalive.json"
    volume = {"name": "home", "mode": "nfs", "url": ganesha.url}
    settings = {"volumes": [volume], "interval_seconds": 0.3, "timeout_seconds": 1, "file_name": ".probe-hub"}
    config.write_text(json.dumps(settings))
    # No role: the keepalive never calls the hub API, so its token gets no scopes at all.
    hub = hub_factory(
        f'c.JupyterHub.services = c.JupyterHub.services + [{{"name": "hubkit-nfs-keepalive", '
        f'"command": [{KEEPALIVE_BIN!r}, "--config", {str(config)!r}], "url": "http://127.0.0.1:{port}"}}]\n'
    )
    status_url = f"{hub.url}/services/hubkit-nfs-keepalive/health"
    async with httpx.AsyncClient() as c:
        body: dict[str, Any] = {}
        for _ in range(100):
            r = await c.get(status_url)
            body = r.json() if r.headers.get("content-type") == "application/json" else {}
            if body.get("volumes", {}).get("home", {}).get("state") == "healthy":
                break
            await asyncio.sleep(0.1)
        assert body["volumes"]["home"]["state"] == "healthy"
        assert unavailable_volumes(body, ["home"]) == []
        ganesha.pause()
        try:
            for _ in range(100):
                r = await c.get(status_url)
                if r.status_code == 503:
                    break
                await asyncio.sleep(0.1)
        finally:
            ganesha.resume()
        assert r.status_code == 503
        assert unavailable_volumes(r.json(), ["home"]) == ["home"]
        assert UNAVAILABLE_MESSAGE == "home directories are unavailable; an administrator has been alerted"
    assert "volume home is UNHEALTHY" in hub.log_path.read_text()


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    cases = {
        "volumes: []\n": "volumes: List should have at least 1 item",
        "volumes:\n  - {name: home, path: /srv/home, url: 'nfs://10.0.0.1/h'}\n": "directory mode needs path",
        "volumes:\n  - {name: home, path: relative/dir}\n": "path must be absolute",
        "volumes:\n  - {name: home, mode: nfs, url: 'http://x'}\n": "String should match pattern",
        "volumes:\n  - {name: a, path: /a}\n  - {name: a, path: /b}\n": "volume names must be unique",
        "volumes:\n  - {name: a, path: /a}\ntimout_seconds: 3\n": "timout_seconds: Extra inputs are not",
        "volumes:\n  - {name: '../x', path: /a}\n": "String should match pattern",
    }
    for text, message in cases.items():
        path = tmp_path / "k.yaml"
        path.write_text(text)
        with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
            load_settings(KeepaliveSettings, path, env_prefix=PREFIX, env={})
    path = tmp_path / "broken.yaml"
    path.write_text("volumes: [\n")
    out = subprocess.run(
        [KEEPALIVE_BIN, "--config", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == 2
    assert out.stderr.startswith(f"hubkit-nfs-keepalive: settings file {path} is not valid YAML:")
