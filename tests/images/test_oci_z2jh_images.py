"""The images zero-to-jupyterhub runs, built for real here by images/build-local.sh (`make images`) over the
Debian bases made with mmdebstrap: the hub (z2jh 4.4.0's hub set plus HubKit), the slim single-user image,
the proxy (configurable-http-proxy from npm on Debian's Node.js) and the user scheduler (the kube-scheduler
the platform builds). Each is run with podman and checked as z2jh runs it.

Cold builds take minutes (pip and npm download, pycurl and psycopg2 compile); each build is cached in the
system's container storage under a key of its inputs, so a warm run reuses it at once."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from typing import Any

import httpx
import pytest

from hubkit_testing.processes import free_port
from hubkit_testing.tools import PLATFORM_DIR, REPO_ROOT

from ._pods import PODMAN, build_local_image, run

JOVYAN = "1000"
# z2jh's own pins: images/hub/z2jh-4.4.0 (hub), images/singleuser-slim/z2jh-4.4.0 (single-user sample).
Z2JH_HUB_SET = REPO_ROOT / "images" / "hub" / "z2jh-4.4.0" / "requirements.txt"
Z2JH_SINGLEUSER_SET = REPO_ROOT / "images" / "singleuser-slim" / "z2jh-4.4.0" / "requirements.txt"
ISOLATED = (*PODMAN, "--rm", "--network=none", "--cap-drop=all", "--security-opt=no-new-privileges")


def _config(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run("buildah", "inspect", "--type", "image", image))
    config: dict[str, Any] = data["Docker"]["config"]
    return config


def _in(image: str, *command: str) -> str:
    return run(*ISOLATED, "--read-only", image, *command)


def _pins(path: Any) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ;\\]+)", line):
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def _installed(image: str) -> dict[str, str]:
    listing = json.loads(_in(image, "python3", "-m", "pip", "list", "--format=json"))
    return {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in listing}


@pytest.fixture(scope="module")
def hub() -> str:
    return build_local_image("hub")


@pytest.fixture(scope="module")
def singleuser() -> str:
    return build_local_image("singleuser-slim")


@pytest.fixture(scope="module")
def proxy() -> str:
    return build_local_image("proxy")


@pytest.fixture(scope="module")
def scheduler() -> str:
    return build_local_image("user-scheduler")


def test_hub_runs_the_way_z2jh_runs_its_hub(hub: str) -> None:
    config = _config(hub)
    assert config["User"] == "jovyan"
    assert config["WorkingDir"] == "/srv/jupyterhub"
    assert config["Entrypoint"] == ["tini", "--"]
    assert config["Cmd"] == ["jupyterhub", "--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]
    assert _in(hub, "id", "-u").strip() == JOVYAN
    assert _in(hub, "id", "-un").strip() == "jovyan"
    assert _in(hub, "stat", "-c", "%U", "/srv/jupyterhub").strip() == "jovyan"
    assert _in(hub, "jupyterhub", "--version").strip() == "5.5.0"


def test_hub_holds_z2jh_set_unchanged_plus_hubkit_and_no_compiler(hub: str) -> None:
    assert "No broken requirements found." in _in(hub, "python3", "-m", "pip", "check")
    installed = _installed(hub)
    changed = {n: (v, installed.get(n)) for n, v in _pins(Z2JH_HUB_SET).items() if installed.get(n) != v}
    assert not changed, f"z2jh 4.4.0's pins changed in the image (pinned, installed): {changed}"
    assert {"hubkit-spawner", "hubkit-auth", "hubkit-services"} <= set(installed)
    imports = "import hubkit.spawner, hubkit.auth, hubkit.services, pycurl, psycopg2; print(pycurl.version)"
    assert "libcurl" in _in(hub, "python3", "-c", imports)
    for compiler in ("gcc", "cc", "x86_64-linux-gnu-gcc"):
        found = subprocess.run([*ISOLATED, hub, "sh", "-c", f"command -v {compiler}"], capture_output=True)
        assert found.returncode != 0, f"{compiler} is in the final hub image"


def test_hub_lists_every_hubkit_class_jupyterhub_loads(hub: str) -> None:
    out = _in(hub, "python3", "-c", "from hubkit.spawner import HubKitSpawner; print(HubKitSpawner.__mro__)")
    assert "kubespawner.spawner.KubeSpawner" in out
    entry_points = _in(hub, "python3", "-c", _ENTRY_POINTS)
    assert "hubkit" in entry_points.split()


_ENTRY_POINTS = """
from importlib.metadata import entry_points
print(" ".join(e.name for e in entry_points(group="jupyterhub.spawners")))
"""


def test_singleuser_starts_jupyterlab_and_nbgitpuller(singleuser: str) -> None:
    config = _config(singleuser)
    assert config["User"] == "jovyan"
    assert config["WorkingDir"] == "/home/jovyan"
    assert _in(singleuser, "id", "-u").strip() == JOVYAN
    pins = _pins(Z2JH_SINGLEUSER_SET)
    assert _in(singleuser, "jupyter", "lab", "--version").strip() == pins["jupyterlab"]
    assert "--JupyterHubSingleUser.hub_activity_url" in _in(singleuser, "jupyterhub-singleuser", "--help-all")
    assert _in(singleuser, "python3", "-c", "import nbgitpuller; print(nbgitpuller.__file__)").strip()
    extensions = run(*ISOLATED, singleuser, "sh", "-c", "jupyter server extension list 2>&1")
    assert re.search(r"nbgitpuller\W+(\[\d+m)?enabled", extensions), extensions
    assert "git version" in _in(singleuser, "git", "--version")
    assert "No broken requirements found." in _in(singleuser, "python3", "-m", "pip", "check")
    installed = _installed(singleuser)
    assert {n: v for n, v in pins.items() if installed.get(n) != v} == {}


def test_singleuser_serves_jupyterlab(singleuser: str) -> None:
    port = free_port()
    name = f"hubkit-test-singleuser-{port}"
    token = secrets.token_hex(8)
    run(
        *PODMAN, "--detach", f"--name={name}", "--network=host", "--cap-drop=all",
        "--security-opt=no-new-privileges", f"--env=JUPYTER_TOKEN={token}", singleuser,
        "jupyter", "lab", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
    )  # fmt: skip
    try:
        status = _wait_for(f"http://127.0.0.1:{port}/api/status?token={token}")
        assert status.status_code == 200
        lab = httpx.get(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10)
        assert lab.status_code == 200
        assert "JupyterLab" in lab.text
    finally:
        subprocess.run(["podman", "rm", "--force", "--time=5", name], capture_output=True, timeout=60)


def _wait_for(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=2)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"nothing answered at {url} in {timeout:.0f} s"
            time.sleep(0.3)


def test_proxy_answers_on_its_api_port(proxy: str) -> None:
    config = _config(proxy)
    assert config["User"] == "65534:65534"
    locked = json.loads((PLATFORM_DIR / "npm" / "package-lock.json").read_text())
    version = locked["packages"]["node_modules/configurable-http-proxy"]["version"]
    assert _in(proxy, "configurable-http-proxy", "--version").strip() == version == "5.3.0"
    public, api = free_port(), free_port()
    token = secrets.token_hex(16)
    name = f"hubkit-test-proxy-{api}"
    run(
        *PODMAN, "--detach", f"--name={name}", "--network=host", "--read-only", "--cap-drop=all",
        "--security-opt=no-new-privileges", f"--env=CONFIGPROXY_AUTH_TOKEN={token}", proxy,
        "--ip=127.0.0.1", f"--port={public}", "--api-ip=127.0.0.1", f"--api-port={api}",
    )  # fmt: skip
    try:
        auth = {"Authorization": f"token {token}"}
        routes = _wait_for(f"http://127.0.0.1:{api}/api/routes", auth)
        assert routes.status_code == 200
        assert routes.json() == {}
        assert httpx.get(f"http://127.0.0.1:{api}/api/routes", timeout=5).status_code == 403
        target = {"target": "http://127.0.0.1:9"}
        added = httpx.post(f"http://127.0.0.1:{api}/api/routes/hub", json=target, headers=auth, timeout=5)
        assert added.status_code == 201
        routes = httpx.get(f"http://127.0.0.1:{api}/api/routes", headers=auth, timeout=5)
        assert set(routes.json()) == {"/hub"}
    finally:
        subprocess.run(["podman", "rm", "--force", "--time=5", name], capture_output=True, timeout=60)


def test_scheduler_prints_the_platform_kubernetes_version(scheduler: str) -> None:
    versions = (PLATFORM_DIR / "go" / "versions.env").read_text()
    (kubernetes,) = re.findall(r"^KUBERNETES_VERSION=\"?([^\"\n]+)", versions, re.M)
    assert _config(scheduler)["User"] == "65534:65534"
    assert _in(scheduler, "kube-scheduler", "--version").strip() == f"Kubernetes {kubernetes}"
    assert _in(scheduler, "id", "-u").strip() == "65534"
