"""What the chart renders for HubKit's services is exactly what their settings models and builders accept,
and the RBAC it renders grants each service what its docs list and nothing else (judged by the real
API server's authorizer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hubkit.services.common.exceptions import SettingsError
from hubkit.services.common.settings import ServiceSettings, load_settings
from hubkit.services.culler.settings import CullerSettings
from hubkit.services.nfs_keepalive.settings import KeepaliveSettings
from hubkit.services.prepuller.settings import PrepullerSettings
from hubkit.services.warmseats.scheduler_config import SchedulerConfigInput, scheduler_configuration
from hubkit.services.warmseats.settings import WarmSeatsSettings
from hubkit_testing.controlplane import ControlPlane

from ._chart import (
    CHART,
    EXAMPLES,
    delete_cluster_rbac,
    delete_namespaces,
    find,
    post,
    release_namespace,
    render,
)

MODELS: dict[str, tuple[type[ServiceSettings], str]] = {
    "hubkit-culler": (CullerSettings, "HUBKIT_CULLER_"),
    "hubkit-nfs-keepalive": (KeepaliveSettings, "HUBKIT_NFS_KEEPALIVE_"),
    "hubkit-prepuller": (PrepullerSettings, "HUBKIT_PREPULLER_"),
    "hubkit-warmseats": (WarmSeatsSettings, "HUBKIT_WARMSEATS_"),
}


def _settings_files(objects: list[dict[str, Any]], workdir: Path) -> dict[str, Path]:
    files = {}
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap" and name in MODELS:
            files[name] = workdir / f"{name}.yaml"
            files[name].write_text(obj["data"]["settings.yaml"])
    return files


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_rendered_settings_load_in_the_services_models(chart: Path, example: Path, tmp_path: Path) -> None:
    release = release_namespace(example)
    objects = render(chart, example, release)
    files = _settings_files(objects, tmp_path)
    assert files, "every example runs at least one HubKit service"
    for name, path in files.items():
        model, prefix = MODELS[name]
        settings = load_settings(model, path, env_prefix=prefix, env={})
        deployment = find(objects, "Deployment", name)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][-2:] == ["--config", "/etc/hubkit/settings.yaml"]
        port = container["ports"][0]["containerPort"]
        listen = getattr(settings, "listen", None) or f"0.0.0.0:{getattr(settings, 'listen_port', '')}"
        assert listen.endswith(f":{port}"), f"{name} listens where its Service points"
        if hasattr(settings, "namespace"):
            assert settings.namespace == release


def test_a_misspelt_service_setting_is_named_when_the_service_starts(chart: Path, tmp_path: Path) -> None:
    """The schema leaves each service's settings to the service's own model: a typo renders, and the
    service refuses it at start with one line naming the key (nothing half-understood runs)."""
    example = CHART / "examples" / "000-ldap-workbench.yaml"
    objects = render(chart, example, "workbench", "--set", "culler.settings.idle_timout_seconds=60")
    path = _settings_files(objects, tmp_path)["hubkit-culler"]
    with pytest.raises(SettingsError, match=r"idle_timout_seconds: Extra inputs are not permitted"):
        load_settings(CullerSettings, path, env_prefix="HUBKIT_CULLER_", env={})


def test_scheduler_configuration_is_the_builders(chart: Path) -> None:
    example = CHART / "examples" / "001-course-hubs-shared.yaml"
    objects = render(chart, example, "hubkit-system")
    rendered = yaml.safe_load(find(objects, "ConfigMap", "hubkit-packing-scheduler")["data"]["config.yaml"])
    expected = scheduler_configuration(
        SchedulerConfigInput("hubkit-packing-scheduler", lock_namespace="hubkit-system")
    )
    assert rendered == expected
    deployment = find(objects, "Deployment", "hubkit-packing-scheduler")
    assert deployment["spec"]["replicas"] == 2


def _review(cp: ControlPlane, sa: str, verb: str, resource: str, namespace: str = "", **extra: str) -> bool:
    """Whether the API server's authorizer lets service account ``ns/name`` do this."""
    ns, name = sa.split("/")
    attributes = {"verb": verb, "resource": resource, "namespace": namespace, **extra}
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{ns}:{name}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
            "resourceAttributes": attributes,
        },
    }
    answer = cp.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
    return bool(answer["status"].get("allowed", False))


RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def test_each_service_gets_what_its_docs_list_and_no_more(chart: Path, control_plane: ControlPlane) -> None:
    example = CHART / "examples" / "001-course-hubs-shared.yaml"
    objects = [o for o in render(chart, example, "hubkit-system") if o["kind"] in RBAC_KINDS]
    namespaces = ["hubkit-system", "ds100", "stat101", "other-hub"]
    for ns in namespaces:
        control_plane.create_namespace(ns)
    cluster_objects = [o for o in objects if o["kind"].startswith("Cluster")]
    try:
        for obj in objects:
            assert post(control_plane, obj, dry_run=False) is None
        cp, pre, ws = control_plane, "hubkit-system/hubkit-prepuller", "hubkit-system/hubkit-warmseats"
        sched = "hubkit-system/hubkit-packing-scheduler"
        # prepuller: pull pods in its namespace, menus only in the listed hubs' namespaces, nodes read-only.
        assert _review(cp, pre, "create", "pods", "hubkit-system")
        assert _review(cp, pre, "delete", "pods", "hubkit-system")
        assert not _review(cp, pre, "create", "pods", "ds100")
        assert _review(cp, pre, "list", "configmaps", "ds100")
        assert not _review(cp, pre, "list", "configmaps", "other-hub")
        assert not _review(cp, pre, "get", "secrets", "ds100")
        assert _review(cp, pre, "watch", "nodes")
        assert not _review(cp, pre, "patch", "nodes")
        assert _review(cp, pre, "create", "priorityclasses", group="scheduling.k8s.io")
        assert not _review(cp, pre, "delete", "priorityclasses", group="scheduling.k8s.io")
        # warm-seat broker: user pods everywhere read-only, Deployments only in its namespace.
        assert _review(cp, ws, "list", "pods", "other-hub")
        assert not _review(cp, ws, "delete", "pods", "other-hub")
        assert _review(cp, ws, "patch", "deployments", "hubkit-system", group="apps")
        assert not _review(cp, ws, "patch", "deployments", "ds100", group="apps")
        assert _review(cp, ws, "watch", "events", "hubkit-system")
        assert not _review(cp, ws, "get", "secrets", "hubkit-system")
        # packing scheduler: kube-scheduler's own roles plus its leader lock.
        assert _review(cp, sched, "create", "pods/binding", "ds100")
        lease = {"group": "coordination.k8s.io", "name": "hubkit-packing-scheduler"}
        other = {"group": "coordination.k8s.io", "name": "kube-controller-manager"}
        assert _review(cp, sched, "update", "leases", "hubkit-system", **lease)
        assert not _review(cp, sched, "update", "leases", "hubkit-system", **other)
        assert _review(cp, sched, "delete", "pods", "ds100")  # preemption
        assert not _review(cp, sched, "get", "secrets", "ds100")
    finally:
        delete_cluster_rbac(control_plane, cluster_objects)
        delete_namespaces(control_plane, namespaces)


def _hub_rbac(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        o
        for o in objects
        if o["kind"] in RBAC_KINDS and o["metadata"]["labels"]["app.kubernetes.io/component"] == "hub"
    ]


def test_the_hub_gets_the_configmaps_and_cluster_reads_its_spawner_uses(
    chart: Path, control_plane: ControlPlane
) -> None:
    """Seed 001's course hub has a GPU profile (free counts need nodes and pods of all namespaces); seed 004's
    has none. Both write their NSS ConfigMaps and the image menu in their own namespace, and nothing else."""
    gpu_hub = _hub_rbac(render(chart, CHART / "examples" / "001-course-hubs.yaml", "ds100"))
    cpu_hub = _hub_rbac(render(chart, CHART / "examples" / "004-lsst-research.yaml", "jld"))
    assert {o["kind"] for o in gpu_hub} == {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert {o["kind"] for o in cpu_hub} == {"Role", "RoleBinding"}
    namespaces = ["ds100", "jld", "other-hub"]
    for ns in namespaces:
        control_plane.create_namespace(ns)
    cluster_objects = [o for o in gpu_hub + cpu_hub if o["kind"].startswith("Cluster")]
    try:
        for obj in gpu_hub + cpu_hub:
            assert post(control_plane, obj, dry_run=False) is None
        cp, hub, research = control_plane, "ds100/hub", "jld/hub"
        menu, other = {"name": "hubkit-image-menu"}, {"name": "hubkit-hub-config"}
        # NSS ConfigMaps: created, deleted, patched (owner reference) under per-user names.
        for verb in ("create", "delete", "patch"):
            assert _review(cp, hub, verb, "configmaps", "ds100", name="jupyter-ann-nss")
            assert _review(cp, research, verb, "configmaps", "jld")
        # The image menu: read and replaced by name; no other ConfigMap may be read or replaced.
        assert _review(cp, hub, "get", "configmaps", "ds100", **menu)
        assert _review(cp, hub, "update", "configmaps", "ds100", **menu)
        assert not _review(cp, hub, "get", "configmaps", "ds100", **other)
        assert not _review(cp, hub, "update", "configmaps", "ds100", **other)
        assert not _review(cp, hub, "list", "configmaps", "ds100")
        assert not _review(cp, hub, "watch", "configmaps", "ds100")
        # Only in its own namespace, never cluster-wide.
        assert not _review(cp, hub, "create", "configmaps", "other-hub")
        assert not _review(cp, hub, "update", "configmaps", "other-hub", **menu)
        assert not _review(cp, hub, "create", "configmaps")
        assert not _review(cp, hub, "delete", "configmaps")
        assert not _review(cp, hub, "create", "configmaps", "jld")
        # GPU free counts: list and watch nodes and the pods of all namespaces (one watch each); no more.
        for verb in ("list", "watch"):
            assert _review(cp, hub, verb, "nodes")
            assert _review(cp, hub, verb, "pods")
            assert _review(cp, hub, verb, "pods", "other-hub")
        assert not _review(cp, hub, "get", "pods", "other-hub", name="someone-else")
        assert not _review(cp, hub, "delete", "pods", "other-hub")
        assert not _review(cp, hub, "patch", "nodes")
        assert not _review(cp, hub, "get", "secrets", "other-hub")
        assert not _review(cp, hub, "delete", "secrets", "ds100")
        # Without a GPU profile, no cluster-wide reads at all.
        assert not _review(cp, research, "list", "nodes")
        assert not _review(cp, research, "list", "pods")
        assert not _review(cp, research, "list", "pods", "other-hub")
        assert not _review(cp, research, "watch", "nodes")
    finally:
        delete_cluster_rbac(control_plane, cluster_objects)
        delete_namespaces(control_plane, namespaces)


def test_hub_rbac_follows_its_values(chart: Path) -> None:
    course, research = (
        CHART / "examples" / "001-course-hubs.yaml",
        CHART / "examples" / "004-lsst-research.yaml",
    )
    kinds = {
        o["kind"]
        for o in _hub_rbac(render(chart, course, "ds100", "--set", "hub.rbac.gpuAvailability=false"))
    }
    assert kinds == {"Role", "RoleBinding"}
    kinds = {
        o["kind"] for o in _hub_rbac(render(chart, research, "jld", "--set", "hub.rbac.gpuAvailability=true"))
    }
    assert kinds == {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    assert _hub_rbac(render(chart, course, "ds100", "--set", "hub.rbac.create=false")) == []
    # No hub in the release, no hub RBAC (seed 001's cluster-wide part).
    assert _hub_rbac(render(chart, CHART / "examples" / "001-course-hubs-shared.yaml", "hubkit-system")) == []
    # The binding follows z2jh's hub ServiceAccount name.
    for args, account in (
        ([], "hub"),
        (["--set", "jupyterhub.fullnameOverride=ds"], "ds-hub"),
        (["--set", "jupyterhub.hub.serviceAccount.name=course-hub"], "course-hub"),
    ):
        objects = _hub_rbac(render(chart, course, "ds100", *args))
        for binding in [o for o in objects if o["kind"].endswith("Binding")]:
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "ds100"}]
