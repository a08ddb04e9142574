"""The services image built for real: images/build-local.sh runs buildah on images/services/Dockerfile over a
Debian base made here with mmdebstrap (no registry is reachable), then the image is checked as what it is,
an OCI image: its config, its layers, and every command run by podman the way the chart runs it (the
image's own user, read-only root filesystem, every capability dropped, no network). Last, the chart's
culler Deployment runs from the image under podman against a real JupyterHub and culls an idle server.

A cold build takes about two minutes on 2 cores; the script caches each step in the system's container
storage under a key of its inputs, so later runs only rebuild what changed."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from chart._chart import chart_with_z2jh, render

from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.processes import free_port
from hubkit_testing.tiny_spawner import TINY_SPAWNER
from hubkit_testing.tools import REPO_ROOT

from ._pods import PODMAN, PodRun, build_local_image, run

SERVICES = REPO_ROOT / "packages" / "services"
PROJECT = tomllib.loads((SERVICES / "pyproject.toml").read_text())["project"]
COMMANDS = sorted(PROJECT["scripts"])
NOBODY = "65534"

# What the chart's securityContext gives every service container (the last test runs the rendered one).
PODMAN_RUN = (
    *PODMAN,
    "--rm",
    "--read-only",
    "--network=none",
    "--cap-drop=all",
    "--security-opt=no-new-privileges",
)


def _inspect(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run("buildah", "inspect", "--type", "image", image))
    return data


@pytest.fixture(scope="module")
def image() -> str:
    return build_local_image("services")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _in_image(image: str, *command: str | Path, options: tuple[str, ...] = ()) -> str:
    return run(*PODMAN_RUN, *options, image, *command)


def test_config_runs_as_nobody_with_labels_and_no_secrets(image: str) -> None:
    config = _inspect(image)["Docker"]["config"]
    assert config["User"] == f"{NOBODY}:{NOBODY}"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "hubkit-services"
    assert labels["org.opencontainers.image.version"] == PROJECT["version"]
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.licenses"] == "BSD-3-Clause"
    # Declared as "none" on purpose (the chart's probes check /health); kept by the Docker format.
    assert config["Healthcheck"]["Test"] == ["NONE"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].split(":")[0] == "/opt/hubkit/bin"
    assert not [name for name in env if re.search(r"TOKEN|SECRET|PASSWORD|KEY|PROXY", name, re.I)]
    assert config["Cmd"][0] in COMMANDS


def test_build_stage_leaves_only_the_venv_on_the_base(image: str) -> None:
    """One layer over the base, and it holds /opt/hubkit and nothing else: no build-stage files, no
    bind-mounted sources, no CA bundle or pip cache from the build host."""
    history = _inspect(image)["Docker"]["history"]
    froms = [h["comment"].removeprefix("FROM ") for h in history if h.get("comment", "").startswith("FROM ")]
    base = froms[-1]
    assert base.startswith("localhost/hubkit-local/python:")
    layers = _inspect(image)["Docker"]["rootfs"]["diff_ids"]
    base_layers = _inspect(base)["Docker"]["rootfs"]["diff_ids"]
    assert layers[:-1] == base_layers
    assert len(layers) == len(base_layers) + 1
    changed = [line.split(maxsplit=1) for line in run("podman", "image", "diff", image, base).splitlines()]
    assert len(changed) > 1000  # the venv's files
    stray = [p for _, p in changed if p not in {"/opt", "/opt/hubkit"} and not p.startswith("/opt/hubkit/")]
    assert not stray, stray[:20]
    assert ["A", "/opt/hubkit/bin/python3"] in changed


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_runs_as_the_chart_runs_it(image: str, command: str) -> None:
    out = _in_image(image, command, "--help")
    assert out.startswith(f"usage: {command} ")
    assert "--config" in out


def test_default_user_cannot_modify_the_installed_code(image: str) -> None:
    assert _in_image(image, "id", "-u").strip() == NOBODY
    # Even with a writable root filesystem, nobody cannot change the venv.
    probe = subprocess.run(
        [*(a for a in PODMAN_RUN if a != "--read-only"), image, "touch", "/opt/hubkit/bin/hubkit-culler"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode != 0
    assert "Permission denied" in probe.stderr


def test_installed_set_is_consistent_and_only_the_services(image: str) -> None:
    assert "No broken requirements found." in _in_image(image, "python3", "-m", "pip", "check")
    listing = _in_image(image, "python3", "-m", "pip", "list", "--format=json")
    installed = {_normalized(p["name"]): p["version"] for p in json.loads(listing)}
    assert installed["hubkit-services"] == PROJECT["version"]
    # The services talk to the hub over its REST API: JupyterHub itself (and its ORM) stays out.
    for absent in (
        "hubkit-spawner",
        "hubkit-auth",
        "oauthenticator",
        "pytest",
        "hubkit-testing",
        "jupyterhub",
    ):
        assert absent not in installed
    # Every pin of images/services/requirements.txt that applies on Linux is what the image holds.
    requirements = (REPO_ROOT / "images" / "services" / "requirements.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)( ;[^\\]*)?", requirements, re.M)
    linux = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version, marker in pins
        if "== 'win32'" not in marker
    }
    assert len(linux) > 20
    assert {name: installed.get(name) for name in linux} == linux


def test_warm_seat_broker_prints_its_scheduler_config_from_a_mounted_file(image: str, tmp_path: Path) -> None:
    settings = tmp_path / "warmseats.yaml"
    settings.write_text("namespace: hubkit-system\nsizes: [{name: small, cpu: 500m, memory: 2Gi}]\n")
    settings.chmod(0o644)
    printed = _in_image(
        image,
        "hubkit-warmseats",
        "--config",
        "/etc/hubkit/warmseats.yaml",
        "--print-scheduler-config",
        options=(f"--volume={settings}:/etc/hubkit/warmseats.yaml:ro",),
    )
    assert "schedulerName: hubkit-packing-scheduler" in printed
    assert "MostAllocated" in printed


async def test_chart_culler_deployment_from_the_image_culls_a_real_hub(image: str, tmp_path: Path) -> None:
    """The rendered hubkit-culler Deployment (command, settings ConfigMap, token Secret, securityContext,
    /tmp) run by podman on the host's network, against a real hub and proxy."""
    hub_port, culler_port = free_port(), free_port()
    values = {
        "hub": {"apiUrl": f"http://127.0.0.1:{hub_port}/hub/api"},
        "culler": {
            "enabled": True,
            "port": culler_port,
            "settings": {"idle_timeout_seconds": 2, "interval_seconds": 1},
        },
    }
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    objects = render(chart_with_z2jh(tmp_path), tmp_path / "values.yaml", "hubkit-system")
    pod = PodRun(objects, "hubkit-culler", image, tmp_path, host_network=True)
    token = pod.secret("hubkit-culler-token", "token")
    scopes = ["list:users", "read:users:name", "read:users:activity", "read:servers", "delete:servers"]
    hub = Hub(
        HubOptions(
            workdir=tmp_path / "hub",
            port=hub_port,
            config=TINY_SPAWNER
            + f"""
c.JupyterHub.services.append({{"name": "hubkit-culler", "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "hubkit-culler", "scopes": {scopes!r}, "services": ["hubkit-culler"]}}
)
""",
        )
    ).start()
    try:
        with pod.started("culler") as name:
            await hub.start_server("sleepy")
            await hub.wait_for_server("sleepy", ready=False, timeout=30)
            async with httpx.AsyncClient(timeout=10) as client:
                health = await client.get(f"http://127.0.0.1:{culler_port}/health")
                metrics = (await client.get(f"http://127.0.0.1:{culler_port}/metrics")).text
            logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True, timeout=30)
    finally:
        hub.stop()
    assert health.status_code == 200
    assert health.json()["service"] == "hubkit-culler"
    assert 'hubkit_culler_culls_total{dry_run="false",kind="server",policy="idle:default"} 1.0' in metrics
    assert "culled server sleepy/" in logs.stdout + logs.stderr
    assert "DELETE /hub/api/users/sleepy/server (hubkit-culler@127.0.0.1)" in hub.log_path.read_text()
