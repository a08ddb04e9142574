"""Rendering the HubKit chart with the real helm, and applying what it renders to the real API server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.tools import REPO_ROOT, go_tool

CHART = REPO_ROOT / "helm" / "hubkit"
# zero-to-jupyterhub's chart at the version Chart.yaml pins, unpacked (its chart repository cannot be reached
# here). It lives beside the repository: <repo>/../shared/vendor, or beside the main checkout when the repo is
# a git worktree or a clone of a local checkout (CI), or beside a folder above the repository;
# HUBKIT_Z2JH_CHART names another copy.
Z2JH_VERSION = "4.4.0"
Z2JH_VENDOR = Path("shared") / "vendor" / f"zero-to-jupyterhub-{Z2JH_VERSION}" / "jupyterhub"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([go_tool("helm"), *args], capture_output=True, text=True, timeout=120)


def z2jh_chart() -> Path:
    """The unpacked zero-to-jupyterhub chart (see Z2JH_VENDOR); a clear error where it is missing."""
    candidates = [Path(os.environ["HUBKIT_Z2JH_CHART"])] if os.environ.get("HUBKIT_Z2JH_CHART") else []
    candidates.append(REPO_ROOT.parent / Z2JH_VENDOR)
    common = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
    )
    if common.returncode == 0:  # a worktree: beside the main checkout
        candidates.append(Path(common.stdout.strip()).parent.parent / Z2JH_VENDOR)
    origin = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "remote", "get-url", "origin"], capture_output=True, text=True
    )
    if origin.returncode == 0 and origin.stdout.strip().startswith("/"):  # a clone of a local checkout
        candidates.append(Path(origin.stdout.strip()).parent / Z2JH_VENDOR)
    candidates += [parent / Z2JH_VENDOR for parent in REPO_ROOT.parents]  # a clone somewhere below it
    for path in candidates:
        if (path / "Chart.yaml").is_file():
            return path
    tried = ", ".join(str(p) for p in dict.fromkeys(candidates))
    raise FileNotFoundError(
        f"zero-to-jupyterhub {Z2JH_VERSION}'s chart is not at {tried}; unpack its jupyterhub chart there "
        "or set HUBKIT_Z2JH_CHART to its directory."
    )


def chart_with_z2jh(workdir: Path) -> Path:
    """A copy of the chart with the real zero-to-jupyterhub chart in charts/, where `helm dependency build`
    would put it; its version must be the one Chart.yaml pins."""
    copy = workdir / "hubkit"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    z2jh = z2jh_chart()
    (dep,) = yaml.safe_load((copy / "Chart.yaml").read_text())["dependencies"]
    vendored = yaml.safe_load((z2jh / "Chart.yaml").read_text())["version"]
    assert dep["version"] == vendored, f"Chart.yaml pins jupyterhub {dep['version']}, {z2jh} is {vendored}"
    sub = copy / "charts" / "jupyterhub"
    shutil.copytree(z2jh, sub)
    # The published chart carries values.schema.json, made from values.schema.yaml at release (z2jh's
    # tools/generate-json-schema.py); the tag's directory has only the YAML, which helm does not read.
    if not (sub / "values.schema.json").exists():
        schema = yaml.safe_load((sub / "values.schema.yaml").read_text())
        (sub / "values.schema.json").write_text(json.dumps(schema, indent=2))
    return copy


def example_values(example: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(example.read_text())
    return values


def release_namespace(example: Path) -> str:
    """The hub's namespace (where its user pods run), else hubkit-system for the cluster-wide release."""
    config = example_values(example).get("jupyterhub", {}).get("hub", {}).get("config", {})
    return str(config.get("HubKitSpawner", {}).get("namespace", "hubkit-system"))


def render(chart: Path, example: Path, namespace: str, *extra: str) -> list[dict[str, Any]]:
    result = helm("template", "hubkit", str(chart), "--namespace", namespace, "-f", str(example), *extra)
    assert result.returncode == 0, f"helm template {example.name} failed:\n{result.stderr}"
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    # z2jh's templates name no namespace: `helm install -n` puts them in the release namespace.
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"].setdefault("namespace", namespace)
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    have = [(o["kind"], o["metadata"]["name"]) for o in objects]
    raise AssertionError(f"no {kind} {name} rendered; have {have}")


def collection_path(cp: ControlPlane, obj: dict[str, Any]) -> str:
    """The REST collection of an object, found through API discovery."""
    group, _, version = obj["apiVersion"].rpartition("/")
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    resources = cp.request("GET", base)["resources"]
    plural = next(r["name"] for r in resources if r["kind"] == obj["kind"] and "/" not in r["name"])
    if obj["kind"] in CLUSTER_SCOPED:
        return f"{base}/{plural}"
    return f"{base}/namespaces/{obj['metadata']['namespace']}/{plural}"


def delete_cluster_rbac(cp: ControlPlane, objects: list[dict[str, Any]]) -> None:
    """Delete rendered ClusterRoles and ClusterRoleBindings (cluster-scoped: namespaces do not take them)."""
    for obj in objects:
        plural = "clusterroles" if obj["kind"] == "ClusterRole" else "clusterrolebindings"
        cp.request("DELETE", f"/apis/rbac.authorization.k8s.io/v1/{plural}/{obj['metadata']['name']}")


def delete_namespaces(cp: ControlPlane, names: list[str], timeout: float = 60) -> None:
    """Delete and wait until they are gone: later tests reuse the examples' fixed namespace names."""
    for name in names:
        cp.delete_namespace(name)
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            try:
                cp.request("GET", f"/api/v1/namespaces/{name}")
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    break
                raise
            assert time.monotonic() < deadline, f"namespace {name} still exists after {timeout:.0f} s"
            time.sleep(0.2)


@dataclass(frozen=True)
class Failure:
    kind: str
    namespace: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.message}"


def post(cp: ControlPlane, obj: dict[str, Any], *, dry_run: bool = True) -> Failure | None:
    """POST one object (server-side dry run by default); the API server's message on refusal."""
    meta = obj["metadata"]
    path = collection_path(cp, obj) + ("?dryRun=All&fieldValidation=Strict" if dry_run else "")
    try:
        cp.request("POST", path, obj)
    except urllib.error.HTTPError as e:
        body = e.read().decode(errors="replace")
        try:
            message = str(yaml.safe_load(body).get("message", body))
        except yaml.YAMLError:
            message = body
        return Failure(obj["kind"], meta.get("namespace", ""), meta["name"], f"HTTP {e.code}: {message}")
    return None


def pod_from_template(workload: dict[str, Any]) -> dict[str, Any]:
    """A workload's pod template as a Pod: PodSecurity admission judges Pods, not Deployments."""
    template = workload["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{workload['metadata']['name']}-template-check",
            "namespace": workload["metadata"]["namespace"],
            "labels": template["metadata"].get("labels", {}),
        },
        "spec": template["spec"],
    }
