"""The chart's hub configuration in a real JupyterHub: zero-to-jupyterhub's own jupyterhub_config.py from the
rendered chart (tests/chart/_z2jh.py), which loads HubKit's jupyterhub_config.d files, with each example's
values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from traitlets.config import Config

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import ADMIN_SERVICE

from ._chart import (
    CHART,
    EXAMPLES,
    chart_with_z2jh,
    example_values,
    find,
    release_namespace,
    render,
)
from ._stand_ins import StandIns
from ._z2jh import admin_made_secrets, harness_config, hub_env, write_etc

HUB_EXAMPLES = [e for e in EXAMPLES if example_values(e).get("jupyterhub", {}).get("enabled", True)]
SERVICE_NAMES = {
    "culler": "hubkit-culler",
    "nfsKeepalive": "hubkit-nfs-keepalive",
    "prepuller": "hubkit-prepuller",
    "warmseats": "hubkit-warmseats",
}
_VALUES_KEY = {"nfs_keepalive": "nfsKeepalive"}
_SETTINGS_KEY = {"nfsKeepalive": "nfs_keepalive"}
_DEFAULT_PORTS = {
    "hubkit-culler": 9103,
    "hubkit-nfs-keepalive": 9102,
    "hubkit-prepuller": 9460,
    "hubkit-warmseats": 9461,
}
AUTHENTICATORS = {
    "github": "HubKitGitHubAuthenticator",
    "cilogon": "HubKitCILogonAuthenticator",
    "ldap": "HubKitLDAPAuthenticator",
    "lti13": "HubKitLTI13Authenticator",
    "multi": "HubKitMultiAuthenticator",
}


def _write_config_dir(objects: list[dict[str, Any]], target: Path) -> Path:
    """The hubkit-hub-config ConfigMap as the hub pod sees it mounted."""
    target.mkdir()
    for key, text in find(objects, "ConfigMap", "hubkit-hub-config")["data"].items():
        (target / key).write_text(text)
    return target


READ_SERVICES = f"""
c.JupyterHub.load_roles.append(
    {{
        "name": "hubkit-test-read-services",
        "scopes": ["list:services", "read:services", "read:roles:services"],
        "services": [{ADMIN_SERVICE!r}],
    }}
)
"""


@dataclass
class StartedHub:
    hub: Any
    values: dict[str, Any]
    settings: dict[str, Any]
    culler_token: str


def _start_hub(
    chart: Path,
    example: Path,
    tmp_path: Path,
    hub_factory: Any,
    stand_ins: StandIns,
    env: dict[str, str] | None = None,
) -> StartedHub:
    """A real JupyterHub running zero-to-jupyterhub's own jupyterhub_config.py from the rendered chart, with
    the hub pod's files (z2jh's ConfigMap and Secret, HubKit's jupyterhub_config.d) and environment."""
    values = example_values(example)
    namespace = release_namespace(example)
    objects = render(chart, example, namespace)
    etc = write_etc(objects, tmp_path / "etc")
    settings_file = etc / "jupyterhub" / "jupyterhub_config.d" / "hubkit-settings.json"
    settings = json.loads(settings_file.read_text())
    # In the cluster the hub reaches each service at its Service name; here nothing resolves those names
    # (the hub would wait on DNS at start), so point them at a loopback stand-in, keeping the path.
    for key, service in settings["services"].items():
        name = SERVICE_NAMES[_VALUES_KEY.get(key, key)]
        port = values[_VALUES_KEY.get(key, key)].get("port") or _DEFAULT_PORTS[name]
        assert service["url"] == f"http://{name}:{port}"
        service["url"] = stand_ins.start(name)
    settings_file.write_text(json.dumps(settings))
    hub_env_vars = hub_env(objects, namespace, admin_made_secrets(objects)) | (env or {})
    hub = hub_factory(harness_config(READ_SERVICES), env=hub_env_vars, etc_dir=etc)
    return StartedHub(hub, values, settings, hub_env_vars.get("HUBKIT_CULLER_API_TOKEN", ""))


@pytest.mark.parametrize("example", HUB_EXAMPLES, ids=lambda p: p.stem)
async def test_hub_starts_with_the_hubkit_configuration(
    chart: Path, example: Path, tmp_path: Path, hub_factory: Any, stand_ins: StandIns
) -> None:
    started = _start_hub(chart, example, tmp_path, hub_factory, stand_ins)
    hub, values, settings, token = started.hub, started.values, started.settings, started.culler_token

    log = hub.log_path.read_text()
    # z2jh's own jupyterhub_config.py ran, on the chart's rendered values, and loaded HubKit's files.
    assert "Loading /usr/local/etc/jupyterhub/secret/values.yaml" in log, log[-2000:]
    for name in (
        "00-hubkit-settings.py",
        "10-hubkit-spawner.py",
        "20-hubkit-auth.py",
        "30-hubkit-services.py",
    ):
        assert f"Loading /usr/local/etc/jupyterhub/jupyterhub_config.d config: {name}" in log
    assert re.search(r"Using Spawner: hubkit\.spawner\.\S*HubKitSpawner", log), log[-2000:]
    choice = values.get("hub", {}).get("authenticator", "none")
    expected_auth = AUTHENTICATORS.get(choice, "TmpAuthenticator")
    assert re.search(rf"Using Authenticator: \S+\.{expected_auth}", log), log[-2000:]
    auth_state = values["jupyterhub"]["hub"]["config"].get("Authenticator", {}).get("enable_auth_state")
    assert bool(auth_state) == (choice != "none"), "HubKit's identity lives in auth_state"

    services = await hub.api("GET", "/services")
    expected = {name for key, name in SERVICE_NAMES.items() if values.get(key, {}).get("enabled")}
    assert set(services) - {ADMIN_SERVICE} == expected
    for name in expected:
        assert services[name]["prefix"] == f"/services/{name}/"
        key = next(k for k, v in SERVICE_NAMES.items() if v == name)
        assert services[name]["url"] == settings["services"][_SETTINGS_KEY.get(key, key)]["url"]

    async with httpx.AsyncClient(base_url=hub.url) as c:
        for name in expected:  # the proxy routes each service's prefix to it (its /health needs no token)
            answer = await c.get(f"/services/{name}/health")
            assert answer.status_code == 200
            assert answer.json()["service"] == name

    if "hubkit-culler" in expected:
        # The culler's token works and carries exactly the scopes its settings need.
        async with httpx.AsyncClient(base_url=hub.url, headers={"Authorization": f"token {token}"}) as c:
            whoami = (await c.get("/hub/api/user")).json()
        assert whoami["kind"] == "service"
        assert whoami["name"] == "hubkit-culler"
        scopes = set(whoami["scopes"])
        assert {"list:users", "read:servers", "delete:servers", "read:users:activity"} <= scopes
        culler = values["culler"].get("settings", {})
        assert ("admin:users" in scopes) == bool(culler.get("users", {}).get("inactive_days"))
        uses_groups = bool(culler.get("calendar")) or any(
            r.get("groups") for r in culler.get("idle_rules", [])
        )
        if "admin:users" not in scopes:  # admin:users includes reading groups
            assert ("read:users:groups" in scopes) == uses_groups
    for name in expected - {"hubkit-culler"}:
        assert services[name]["roles"] == [], f"{name} calls no hub API and gets no role"


def _exec_files(
    settings: dict[str, Any], tmp_path: Path, env: dict[str, str], base: Config | None = None
) -> Config:
    """Run the files in-process, as z2jh would, against a traitlets Config (``base``: what hub.config set)."""
    objects = render_default(tmp_path)
    config_dir = _write_config_dir(objects, tmp_path / "d")
    (config_dir / "hubkit-settings.json").write_text(json.dumps(settings))
    c = base if base is not None else Config()
    namespace: dict[str, Any] = {"c": c}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUBKIT_HUB_SETTINGS", str(config_dir / "hubkit-settings.json"))
        for name, value in env.items():
            mp.setenv(name, value)
        if "HUBKIT_CULLER_API_TOKEN" not in env:
            mp.delenv("HUBKIT_CULLER_API_TOKEN", raising=False)
        for path in sorted(config_dir.glob("*.py")):
            exec(compile(path.read_text(), str(path), "exec"), namespace)
    return c


def render_default(tmp_path: Path) -> list[dict[str, Any]]:
    """The chart with its default values (no service enabled)."""
    return render(chart_with_z2jh(tmp_path), CHART / "values.yaml", "default")


def test_an_unknown_authenticator_stops_the_hub_with_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown authenticator 'saml'; use one of cilogon, github"):
        _exec_files({"authenticator": "saml"}, tmp_path, {})


def test_the_culler_without_its_token_stops_the_hub_with_one_sentence(tmp_path: Path) -> None:
    settings = {"services": {"culler": {"url": "http://hubkit-culler:9103", "settings": {}}}}
    with pytest.raises(ValueError, match=r"HUBKIT_CULLER_API_TOKEN is not set"):
        _exec_files(settings, tmp_path, {})
    c = _exec_files(settings, tmp_path / "with", {"HUBKIT_CULLER_API_TOKEN": "t0ken"})
    assert c.JupyterHub.services == [
        {"name": "hubkit-culler", "url": "http://hubkit-culler:9103", "api_token": "t0ken", "timeout": 5}
    ]


def test_without_settings_the_files_only_choose_the_spawner(tmp_path: Path) -> None:
    c = _exec_files({}, tmp_path, {})
    assert c.JupyterHub.spawner_class == "hubkit"
    assert "authenticator_class" not in c.JupyterHub
    assert "services" not in c.JupyterHub
    assert "scheduler_name" not in c.KubeSpawner


def test_course_hubs_name_the_shared_packing_scheduler(chart: Path, tmp_path: Path) -> None:
    """Every course hub's user pods go to the one scheduler the hubkit-system release runs."""
    shared = render(chart, CHART / "examples" / "001-course-hubs-shared.yaml", "hubkit-system")
    scheduler = find(shared, "Deployment", "hubkit-packing-scheduler")
    course = render(chart, CHART / "examples" / "001-course-hubs.yaml", "ds100")
    assert not [o for o in course if o["metadata"]["name"] == "hubkit-packing-scheduler"]
    settings = json.loads(find(course, "ConfigMap", "hubkit-hub-config")["data"]["hubkit-settings.json"])
    c = _exec_files(settings, tmp_path, {"HUBKIT_CULLER_API_TOKEN": "t"})
    config = yaml.safe_load(find(shared, "ConfigMap", "hubkit-packing-scheduler")["data"]["config.yaml"])
    assert (
        c.KubeSpawner.scheduler_name == config["profiles"][0]["schedulerName"] == "hubkit-packing-scheduler"
    )
    assert scheduler["spec"]["template"]["spec"]["serviceAccountName"] == "hubkit-packing-scheduler"


@pytest.mark.parametrize("example", HUB_EXAMPLES, ids=lambda p: p.stem)
def test_examples_wire_zero_to_jupyterhub_to_the_hubkit_objects(example: Path) -> None:
    """What the chart cannot template into the z2jh subchart, each example's values must say."""
    values = example_values(example)
    hub = values["jupyterhub"]["hub"]
    assert hub["image"]["name"] == "ghcr.io/hubkit/hub", "HubKit's packages are in its own hub image"
    (volume,) = [v for v in hub["extraVolumes"] if v.get("configMap", {}).get("name") == "hubkit-hub-config"]
    (mount,) = [m for m in hub["extraVolumeMounts"] if m["name"] == volume["name"]]
    assert mount["mountPath"] == "/usr/local/etc/jupyterhub/jupyterhub_config.d"
    if values.get("culler", {}).get("enabled"):
        assert values["jupyterhub"]["cull"]["enabled"] is False, "two cullers would race"
        token = hub["extraEnv"]["HUBKIT_CULLER_API_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": "hubkit-culler-token", "key": "token"}
    # z2jh's metadata blocker is a privileged init container, which restricted namespaces refuse;
    # HubKit's NetworkPolicy blocks the address instead.
    assert values["jupyterhub"]["singleuser"]["cloudMetadata"]["blockWithIptables"] is False


REFUSAL = "Home directories are unavailable; an administrator has been alerted; try again later."
IDENTITY = {
    "key": "github:583231",
    "uid": 583231,
    "gid": 583231,
    "posix_groups": {},
    "home": "github-583231-9b1d",
}
HOMES_DOWN = {
    "healthy": False,
    "volumes": {
        "home": {
            "state": "unhealthy",
            "healthy": False,
            "unhealthy_since": "2026-11-22T04:08:31.004+00:00",
            "failing_step": "write",
            "error": "Read-only file system",
        }
    },
}


async def test_the_real_hub_asks_the_keepalive_the_chart_enables(
    chart: Path, tmp_path: Path, hub_factory: Any, stand_ins: StandIns, control_plane: ControlPlane
) -> None:
    """Seed 004 runs the keepalive beside its hub: the real hub's spawner asks the keepalive's GET /health,
    at the URL the chart's settings name, before a spawn, and refuses it while the homes are down (the
    spawn fails with HubKit's sentence). (The
    prepuller's /status is read only when the spawn form renders, which needs a browser login this example's
    OAuth authenticators cannot give here; its URL is checked by the next test.)"""
    example = CHART / "examples" / "004-lsst-research.yaml"
    env = {"KUBECONFIG": str(control_plane.admin_kubeconfig)}  # KubeSpawner loads it when a spawner is made
    hub = _start_hub(chart, example, tmp_path, hub_factory, stand_ins, env).hub
    user = "rubin-probe"
    await hub.ensure_user(user)
    await hub.api("PATCH", f"/users/{user}", {"auth_state": {"hubkit": IDENTITY}})

    stand_ins.answer("hubkit-nfs-keepalive", "/health", 503, HOMES_DOWN)
    async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
        # z2jh sets slow_spawn_timeout 0: the API answers 202 at once and the refusal ends the spawn, which
        # the progress stream (what the spawn page shows) reports as failed with HubKit's sentence.
        started = await c.post(f"/hub/api/users/{user}/server", json={"profile": "lsst"})
        assert started.status_code == 202, started.text
        events = []
        async with c.stream("GET", f"/hub/api/users/{user}/server/progress") as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
    (last,) = events[-1:]
    assert last.get("failed") is True, events
    assert REFUSAL in last["message"], events
    state = await hub.api("GET", f"/users/{user}")
    assert state["servers"] == {}, "nothing half-started"
    assert stand_ins.paths("hubkit-nfs-keepalive").count("/health") == 1
    assert f"Refused spawn for {user} (jld)" in hub.log_path.read_text()


def test_the_spawner_gets_the_service_urls_only_for_enabled_services(chart: Path, tmp_path: Path) -> None:
    with_services = render(chart, CHART / "examples" / "004-lsst-research.yaml", "jld")
    settings = json.loads(
        find(with_services, "ConfigMap", "hubkit-hub-config")["data"]["hubkit-settings.json"]
    )
    c = _exec_files(settings, tmp_path / "on", {"HUBKIT_CULLER_API_TOKEN": "t"})
    assert c.HubKitSpawner.prepuller_status_url == "http://hubkit-prepuller:9460/status"
    assert c.HubKitSpawner.nfs_keepalive_url == "http://hubkit-nfs-keepalive:9102/health"

    ports = ["--set", "prepuller.port=9999", "--set", "nfsKeepalive.enabled=false"]
    moved = render(chart, CHART / "examples" / "004-lsst-research.yaml", "jld", *ports)
    settings = json.loads(find(moved, "ConfigMap", "hubkit-hub-config")["data"]["hubkit-settings.json"])
    c = _exec_files(settings, tmp_path / "moved", {"HUBKIT_CULLER_API_TOKEN": "t"})
    assert c.HubKitSpawner.prepuller_status_url == "http://hubkit-prepuller:9999/status"
    assert "nfs_keepalive_url" not in c.HubKitSpawner

    without = render(chart, CHART / "examples" / "002-tess-public.yaml", "tess-public")
    settings = json.loads(find(without, "ConfigMap", "hubkit-hub-config")["data"]["hubkit-settings.json"])
    assert set(settings["services"]) == {"culler"}
    c = _exec_files(settings, tmp_path / "off", {"HUBKIT_CULLER_API_TOKEN": "t"})
    assert "prepuller_status_url" not in c.HubKitSpawner
    assert "nfs_keepalive_url" not in c.HubKitSpawner


def test_a_service_url_set_in_hub_config_wins(tmp_path: Path) -> None:
    """Seed 001's course hubs name the shared prepuller of the hubkit-system release in hub.config."""
    shared = "http://hubkit-prepuller.hubkit-system:9460/status"
    base = Config()
    base.HubKitSpawner.prepuller_status_url = shared
    settings = {"services": {"prepuller": {"url": "http://hubkit-prepuller:9460"}}}
    c = _exec_files(settings, tmp_path, {}, base)
    assert c.HubKitSpawner.prepuller_status_url == shared
    course = example_values(CHART / "examples" / "001-course-hubs.yaml")
    assert course["jupyterhub"]["hub"]["config"]["HubKitSpawner"]["prepuller_status_url"] == shared
