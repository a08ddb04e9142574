"""The one service runtime (``hubkit.services.common.cli``) as an operator meets it, on real processes:
the same flags everywhere, one log format, ``/health`` ``/status`` ``/metrics`` at the root and under the
hub prefix, a clean stop on SIGTERM, and exit codes 0, 1 and 2 with one sentence."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _http import get

from hubkit_testing.processes import free_port

BIN = Path(sys.executable).parent
COMMANDS = ("hubkit-culler", "hubkit-nfs-keepalive", "hubkit-prepuller", "hubkit-warmseats")
LOG_LINE = re.compile(r"^\[[DIWE] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [\w.-]+\] ")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HUBKIT_", "JUPYTERHUB_"))}


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the service exited early"
        if get(port, "/health")[0]:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing answered on port {port}")


def keepalive_settings(tmp_path: Path, port: int, **extra: Any) -> Path:
    config = tmp_path / "keepalive.yaml"
    volumes = [{"name": "home", "path": str(tmp_path)}]
    config.write_text(yaml.safe_dump({"volumes": volumes, "listen": f"127.0.0.1:{port}", **extra}))
    return config


@pytest.mark.parametrize("command", COMMANDS)
def test_every_service_has_the_same_command_line(command: str) -> None:
    out = subprocess.run(
        [str(BIN / command), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=clean_env(),
    ).stdout
    assert "--config CONFIG" in out
    assert "--log-level {DEBUG,INFO,WARNING,ERROR}" in out
    assert "deprecated: use --log-level DEBUG" in out
    prefix = "HUBKIT_" + command.removeprefix("hubkit-").upper().replace("-", "_") + "_CONFIG"
    assert prefix in out


@pytest.fixture
def keepalive(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``hubkit-nfs-keepalive --log-level debug`` probing a plain directory and an absent one."""
    port = free_port()
    config = keepalive_settings(tmp_path, port, interval_seconds=0.5)
    data = yaml.safe_load(config.read_text())
    data["volumes"].append({"name": "gone", "path": str(tmp_path / "absent")})
    config.write_text(yaml.safe_dump(data))
    log = tmp_path / "keepalive.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "hubkit-nfs-keepalive"), "--config", str(config), "--log-level", "debug"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=clean_env(),
        )
    try:
        wait_for_port(port, proc)
        yield proc, port, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_health_status_and_metrics_at_the_root_and_under_the_prefix_then_a_clean_stop(
    keepalive: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    proc, port, log = keepalive
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        volumes = json.loads(get(port, "/health")[1] or b"{}").get("volumes", {})
        states = {name: v["state"] for name, v in volumes.items()}
        if states == {"home": "healthy", "gone": "unhealthy"}:
            break
        time.sleep(0.2)
    for prefix in ("/", "/services/hubkit-nfs-keepalive/"):
        code, body = get(port, f"{prefix}health")
        health = json.loads(body)
        assert code == 503  # one volume is unhealthy: the status code says so, the body says which
        assert (health["service"], health["healthy"]) == ("hubkit-nfs-keepalive", False)
        assert health["volumes"]["gone"]["failing_step"] == "write"
        assert health["volumes"]["home"]["state"] == "healthy"
        code, body = get(port, f"{prefix}status")
        assert code == 200
        assert set(json.loads(body)["volumes"]) == {"home", "gone"}
        code, body = get(port, f"{prefix}metrics")
        assert code == 200
        assert 'hubkit_nfs_volume_healthy{volume="gone"} 0.0' in body.decode()
    assert get(port, "/services/other/health")[0] == 404
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    lines = log.read_text().splitlines()
    assert lines
    assert all(LOG_LINE.match(line) for line in lines), [line for line in lines if not LOG_LINE.match(line)]
    assert any(line.startswith("[D ") for line in lines)  # --log-level debug (lower case works too)
    assert any("hubkit-nfs-keepalive: stopping on a signal" in line for line in lines)


def test_debug_is_a_deprecated_alias_and_info_is_the_default(tmp_path: Path) -> None:
    def first_lines(*flags: str) -> list[str]:
        port = free_port()
        config = keepalive_settings(tmp_path, port)
        proc = subprocess.Popen(
            [str(BIN / "hubkit-nfs-keepalive"), "--config", str(config), *flags],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        try:
            wait_for_port(port, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        return err.decode().splitlines()

    debug = first_lines("--debug")
    assert "--debug is deprecated; use --log-level DEBUG" in debug[0]
    assert debug[0].startswith("[W ")
    assert any(line.startswith("[D ") for line in debug)
    default = first_lines()
    assert default
    assert not [line for line in default if line.startswith("[D ")]


def test_a_service_that_cannot_start_exits_1_with_one_sentence(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = keepalive_settings(tmp_path, port)
        out = subprocess.run(
            [str(BIN / "hubkit-nfs-keepalive"), "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        f"hubkit-nfs-keepalive: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


@pytest.mark.parametrize("command", ["hubkit-prepuller", "hubkit-warmseats"])
def test_an_unreadable_kubeconfig_is_a_settings_error(command: str, tmp_path: Path) -> None:
    config = tmp_path / "settings.yaml"
    kubeconfig = tmp_path / "absent-kubeconfig"
    settings: dict[str, Any] = {"namespace": "x", "kubeconfig": str(kubeconfig), "listen_port": 0}
    if command == "hubkit-warmseats":
        settings["sizes"] = [{"name": "a", "cpu": "1", "memory": "1Gi"}]
    config.write_text(yaml.safe_dump(settings))

    def run() -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / command), "--config", str(config)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())

    out = run()
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"{command}: the kubeconfig {kubeconfig} does not exist (or is not a file)"
    ]
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")  # there, but names no cluster
    out = run()
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        .splitlines()[-1]
        .startswith(f"{command}: cannot load the kubeconfig {kubeconfig}: ")
    )


def test_the_culler_without_a_hub_token_exits_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(BIN / "hubkit-culler"), "--once"], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "hubkit-culler: JUPYTERHUB_API_TOKEN is not set: run this service from c.JupyterHub.services "
        "or give it a token"
    ]
