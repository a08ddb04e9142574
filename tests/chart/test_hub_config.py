"""The chart's jupyterhub_config.d files, with each example's values, loaded into a real JupyterHub."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from traitlets.config import Config

from hubkit_testing.hub import ADMIN_SERVICE

from ._chart import (
    CHART,
    EXAMPLES,
    chart_without_dependencies,
    example_values,
    find,
    release_namespace,
    render,
)
from ._stand_ins import StandIns

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


def _hub_config(values: dict[str, Any], config_dir: Path) -> str:
    """What zero-to-jupyterhub's jupyterhub_config.py does with these values: apply hub.config, then exec
    every jupyterhub_config.d/*.py in name order in one namespace."""
    hub_config = values["jupyterhub"]["hub"].get("config", {})
    return f"""
import glob as _glob
c.JupyterHub.load_roles.append(
    {{
        "name": "hubkit-test-read-services",
        "scopes": ["list:services", "read:services", "read:roles:services"],
        "services": [{ADMIN_SERVICE!r}],
    }}
)
for _section, _traits in {hub_config!r}.items():
    for _name, _value in _traits.items():
        setattr(c[_section], _name, _value)
for _path in sorted(_glob.glob({str(config_dir)!r} + "/*.py")):
    exec(compile(open(_path).read(), _path, "exec"))
"""


@pytest.mark.parametrize("example", HUB_EXAMPLES, ids=lambda p: p.stem)
async def test_hub_starts_with_the_hubkit_configuration(
    chart: Path, example: Path, tmp_path: Path, hub_factory: Any, stand_ins: StandIns
) -> None:
    values = example_values(example)
    objects = render(chart, example, release_namespace(example))
    config_dir = _write_config_dir(objects, tmp_path / "jupyterhub_config.d")
    settings_file = config_dir / "hubkit-settings.json"
    settings = json.loads(settings_file.read_text())
    # In the cluster the hub reaches each service at its Service name; here nothing resolves those names
    # (the hub would wait on DNS at start), so point them at a closed loopback port, keeping the path.
    for key, service in settings["services"].items():
        name = SERVICE_NAMES[_VALUES_KEY.get(key, key)]
        port = values[_VALUES_KEY.get(key, key)].get("port") or _DEFAULT_PORTS[name]
        assert service["url"] == f"http://{name}:{port}"
        service["url"] = stand_ins.start(name)
    settings_file.write_text(json.dumps(settings))
    token = secrets.token_hex(16)
    env = {
        "HUBKIT_HUB_SETTINGS": str(config_dir / "hubkit-settings.json"),
        "HUBKIT_CULLER_API_TOKEN": token,
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),  # z2jh generates CryptKeeper.keys
    }
    hub = hub_factory(_hub_config(values, config_dir), env=env)

    log = hub.log_path.read_text()
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


def _exec_files(settings: dict[str, Any], tmp_path: Path, env: dict[str, str]) -> Config:
    """Run the files in-process, as z2jh would, against a plain traitlets Config."""
    objects = render_default(tmp_path)
    config_dir = _write_config_dir(objects, tmp_path / "d")
    (config_dir / "hubkit-settings.json").write_text(json.dumps(settings))
    c = Config()
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
    return render(chart_without_dependencies(tmp_path), CHART / "values.yaml", "default")


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
    assert hub["image"]["name"] == "ghcr.io/hubkit/hub", "HubKit needs its JupyterHub 6 hub image"
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
