"""zero-to-jupyterhub's hub pod, as the rendered chart describes it, for a real JupyterHub on this host: the
files its container sees under /usr/local/etc/jupyterhub (z2jh's jupyterhub_config.py and z2jh.py, its
config/ and secret/ volumes, HubKit's jupyterhub_config.d) and its environment (values, Secret keys, the
pod's namespace, the `<SERVICE>_SERVICE_PORT` variables a kubelet sets). The hub then runs z2jh's own
jupyterhub_config.py, unchanged, with /usr/local/etc seen at that directory in a private mount namespace
(hubkit_testing.hub.HubOptions.etc_dir)."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

from ._chart import find

ETC = Path("/usr/local/etc")
CONFIG = ETC / "jupyterhub" / "jupyterhub_config.py"


def hub_container(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """z2jh's hub Deployment's pod spec and its `hub` container."""
    spec = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "hub"]
    return spec, container


def _volume_files(objects: list[dict[str, Any]], volume: dict[str, Any]) -> dict[str, str]:
    if "configMap" in volume:
        data: dict[str, str] = find(objects, "ConfigMap", volume["configMap"]["name"]).get("data", {})
        return data
    if "secret" in volume:
        secret = find(objects, "Secret", volume["secret"]["secretName"])
        files = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        return files | dict(secret.get("stringData", {}))
    raise AssertionError(f"the hub's volume {volume['name']} is neither a ConfigMap nor a Secret: {volume}")


def write_etc(objects: list[dict[str, Any]], target: Path) -> Path:
    """The hub container's mounts under /usr/local/etc, written below ``target`` (its stand-in)."""
    spec, container = hub_container(objects)
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        path = Path(mount["mountPath"])
        if not path.is_relative_to(ETC):
            continue  # /srv/jupyterhub (the database PVC): the hub's working directory here
        files = _volume_files(objects, volumes[mount["name"]])
        where = target / path.relative_to(ETC)
        if "subPath" in mount:
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_text(files[mount["subPath"]])
            continue
        where.mkdir(parents=True, exist_ok=True)
        for key, text in files.items():
            (where / key).write_text(text)
    assert (target / CONFIG.relative_to(ETC)).is_file(), "z2jh's hub mounts no jupyterhub_config.py"
    return target


def _rendered(objects: list[dict[str, Any]], kind: str, name: str) -> bool:
    return any(o["kind"] == kind and o["metadata"]["name"] == name for o in objects)


def admin_made_secrets(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The Secrets the hub's env names that the chart does not render (the admin creates them before
    install, as the guides say, e.g. an OAuth client secret): a random value for each key here."""
    _, container = hub_container(objects)
    made: dict[str, dict[str, str]] = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref and not _rendered(objects, "Secret", ref["name"]):
            made.setdefault(ref["name"], {})[ref["key"]] = secrets.token_hex(16)
    return made


def secret_value(objects: list[dict[str, Any]], name: str, key: str) -> str:
    secret = find(objects, "Secret", name)
    if key in secret.get("stringData", {}):
        return str(secret["stringData"][key])
    return base64.b64decode(secret["data"][key]).decode()


def hub_env(
    objects: list[dict[str, Any]], namespace: str, admin_secrets: dict[str, dict[str, str]] | None = None
) -> dict[str, str]:
    """The hub container's environment as a kubelet gives it: its env entries (Secret keys from the rendered
    Secrets, else from ``admin_secrets``), then the `<NAME>_SERVICE_HOST/PORT` variables of the namespace's
    Services."""
    _, container = hub_container(objects)
    env: dict[str, str] = {}
    for service in [o for o in objects if o["kind"] == "Service"]:
        if service["metadata"].get("namespace", namespace) != namespace:
            continue
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = service["spec"].get("clusterIP") or "127.0.0.1"
        env[f"{prefix}_SERVICE_PORT"] = str(service["spec"]["ports"][0]["port"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        source = var["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if ref["name"] in (admin_secrets or {}):
                env[var["name"]] = (admin_secrets or {})[ref["name"]][ref["key"]]
            else:
                env[var["name"]] = secret_value(objects, ref["name"], ref["key"])
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = namespace
        else:
            raise AssertionError(f"the hub's env {var['name']} comes from {source}, which this cannot give")
    return env


def harness_config(extra: str = "") -> str:
    """Appended to the test harness's jupyterhub_config.py: z2jh's own config file (as the hub image's CMD
    runs it), then what the harness must keep: its proxy (z2jh's runs in another pod), its hub address
    (z2jh binds 8081 on every address), its admin service (z2jh starts from empty services and roles)."""
    return f"""
_harness = {{
    "api_url": c.ConfigurableHTTPProxy.api_url,
    "hub": f"http://{{c.JupyterHub.hub_ip}}:{{c.JupyterHub.hub_port}}",
    "services": list(c.JupyterHub.services),
    "roles": list(c.JupyterHub.load_roles),
}}
import os as _os
assert _os.path.isfile({str(CONFIG)!r}), "z2jh's jupyterhub_config.py is not mounted"
load_subconfig({str(CONFIG)!r})
c.ConfigurableHTTPProxy.should_start = True
c.ConfigurableHTTPProxy.api_url = _harness["api_url"]
c.JupyterHub.hub_bind_url = c.JupyterHub.hub_connect_url = _harness["hub"]
c.JupyterHub.services = [*c.JupyterHub.services, *_harness["services"]]
c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, *_harness["roles"]]
c.JupyterHub.cleanup_servers = True
{extra}
"""
