"""`make chart`: real helm lints and renders every example; the real API server judges every object."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubkit_testing.controlplane import ControlPlane

from ._chart import (
    CHART,
    EXAMPLES,
    WORKLOADS,
    Failure,
    delete_namespaces,
    find,
    helm,
    pod_from_template,
    post,
    release_namespace,
    render,
)

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


def test_chart_declares_a_pinned_zero_to_jupyterhub_dependency() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    (dep,) = meta["dependencies"]
    assert dep["name"] == "jupyterhub"
    assert dep["repository"] == "https://hub.jupyter.org/helm-chart/"
    assert re.fullmatch(r"4\.\d+\.\d+", dep["version"]), "pin one exact 4.x release"
    assert dep["condition"] == "jupyterhub.enabled"


def test_there_is_an_example_per_seed() -> None:
    seeds = {p.name.split("-")[0] for p in EXAMPLES}
    assert seeds == {"000", "001", "002", "003", "004"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_helm_lint(chart: Path, example: Path) -> None:
    ns = release_namespace(example)
    result = helm("lint", str(chart), "--strict", "-f", str(example), "--namespace", ns)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def _namespaces_needed(objects: list[dict[str, Any]], release: str) -> set[str]:
    return {o["metadata"]["namespace"] for o in objects if "namespace" in o["metadata"]} - {release}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_rendered_object_passes_the_api_server(
    chart: Path, example: Path, control_plane: ControlPlane
) -> None:
    release = release_namespace(example)
    objects = render(chart, example, release)
    assert objects, "nothing rendered"
    # The release namespace enforces PodSecurity "restricted"; the NFS server's own namespace is rendered by
    # the chart (labelled privileged) and created for real, as are namespaces the chart grants access in.
    control_plane.create_namespace(release, RESTRICTED)
    created = [release]
    try:
        for ns_obj in [o for o in objects if o["kind"] == "Namespace"]:
            assert post(control_plane, ns_obj, dry_run=False) is None
            created.append(ns_obj["metadata"]["name"])
        for name in _namespaces_needed(objects, release) - set(created):
            control_plane.create_namespace(name, RESTRICTED)
            created.append(name)

        failures: list[Failure] = []
        for obj in objects:
            if obj["kind"] == "Namespace":
                continue
            if (failure := post(control_plane, obj)) is not None:
                failures.append(failure)
        assert not failures, "the API server refused:\n" + "\n".join(map(str, failures))

        # PodSecurity admission judges Pods: check each workload's pod template as a Pod (its
        # ServiceAccount created for real first, since admission looks it up).
        for sa in [o for o in objects if o["kind"] == "ServiceAccount"]:
            assert post(control_plane, sa, dry_run=False) is None
        for workload in [o for o in objects if o["kind"] in WORKLOADS]:
            if (failure := post(control_plane, pod_from_template(workload))) is not None:
                failures.append(failure)
        assert not failures, "pods refused:\n" + "\n".join(map(str, failures))
    finally:
        delete_namespaces(control_plane, created)


def test_restricted_enforcement_is_real_and_the_nfs_server_needs_its_own_namespace(
    chart: Path, control_plane: ControlPlane
) -> None:
    """The check above would mean nothing if the namespace let anything in: the NFS server's pod (which
    needs CAP_DAC_READ_SEARCH) is refused in a restricted namespace with PodSecurity's message."""
    example = CHART / "examples" / "000-ldap-workbench.yaml"
    objects = render(chart, example, "workbench")
    server = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "hubkit-nfs")
    ns = control_plane.create_namespace("restricted-probe", RESTRICTED)
    try:
        pod = pod_from_template(server)
        pod["metadata"]["namespace"] = ns
        failure = post(control_plane, pod)
        assert failure is not None
        assert "violates PodSecurity" in failure.message
        assert "restricted" in failure.message
        assert "DAC_READ_SEARCH" in failure.message
    finally:
        delete_namespaces(control_plane, [ns])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "culer.enabled=true"], "additional properties 'culer' not allowed"),
        (["--set", "nfs.mountOptions[0]=nolock"], "additional properties 'mountOptions' not allowed"),
        (["--set", "priorityClasses.warmseat.value=-20"], "/priorityClasses/warmseat/value"),
        (["--set", "hub.authenticator=saml"], "/hub/authenticator"),
        (["--set", "nfs.nodeCIDRs[0]=everyone"], "/nfs/nodeCIDRs/0"),
        (["--set", "services.hubNamespaces[0]=DS100"], "/services/hubNamespaces/0"),
        (["--set", "hub.rbac.gpuAvailability=sometimes"], "/hub/rbac/gpuAvailability"),
    ],
)
def test_schema_refuses_bad_values_with_a_clear_message(chart: Path, args: list[str], message: str) -> None:
    result = helm("template", "hubkit", str(chart), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert result.stdout == "", "nothing may be rendered from refused values"


def test_nfs_enabled_without_its_namespace_is_refused(chart: Path) -> None:
    result = helm("template", "hubkit", str(chart), "--set", "nfs.enabled=true")
    assert result.returncode != 0
    assert "nfs.namespace is required when nfs.enabled" in result.stderr


def test_the_jupyterhub_key_stays_open(chart: Path) -> None:
    result = helm("template", "hubkit", str(chart), "--set", "jupyterhub.proxy.https.enabled=true")
    assert result.returncode == 0, result.stderr


def test_nfs_objects_avoid_the_seed_004_pitfalls(chart: Path) -> None:
    example = CHART / "examples" / "004-lsst-research.yaml"
    objects = render(chart, example, "jld")
    pv = next(o for o in objects if o["kind"] == "PersistentVolume")
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "hubkit-nfs")
    # The PV names the address the Service is pinned to: nothing to look up after install.
    assert pv["spec"]["nfs"]["server"] == service["spec"]["clusterIP"] == "10.96.100.30"
    assert "local_lock=all" in pv["spec"]["mountOptions"]
    assert pv["spec"]["claimRef"] == {"namespace": "jld", "name": "hubkit-home"}
    assert pv["metadata"]["name"] == "hubkit-jld-home"
    conf = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "hubkit-nfs")
    ganesha = conf["data"]["ganesha.conf"]
    assert "Grace_Period = 30;" in ganesha
    assert "Lease_Lifetime = 20;" in ganesha
    # Without a pinned IP the PV falls back to the Service's DNS name.
    objects = render(chart, example, "jld", "--set", "nfs.clusterIP=")
    pv = next(o for o in objects if o["kind"] == "PersistentVolume")
    assert pv["spec"]["nfs"]["server"] == "hubkit-nfs.jld-nfs.svc.cluster.local"


def test_network_policies_block_metadata_and_direct_nfs(chart: Path) -> None:
    example = CHART / "examples" / "000-ldap-workbench.yaml"
    objects = render(chart, example, "workbench", "--set", "networkPolicy.userEgressDenyCIDRs[0]=10.0.0.0/8")
    users = find(objects, "NetworkPolicy", "hubkit-singleuser-egress")
    assert users["spec"]["podSelector"] == {"matchLabels": {"component": "singleuser-server"}}
    (rule,) = users["spec"]["egress"]
    assert rule["to"][0]["ipBlock"]["except"] == ["169.254.169.254/32", "10.0.0.0/8"]
    nfs = find(objects, "NetworkPolicy", "hubkit-nfs")
    assert nfs["metadata"]["namespace"] == "workbench-nfs"
    assert nfs["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = nfs["spec"]["ingress"]
    assert ingress["from"] == [{"ipBlock": {"cidr": "172.20.0.0/16"}}], "only the nodes (kubelet mounts)"
    services = find(objects, "NetworkPolicy", "hubkit-services-ingress")
    hub_and_proxy = {"matchExpressions": [{"key": "component", "operator": "In", "values": ["hub", "proxy"]}]}
    assert services["spec"]["ingress"][0]["from"] == [{"podSelector": hub_and_proxy}], "this namespace only"


def test_services_admit_the_hubs_of_the_listed_namespaces(chart: Path) -> None:
    """Seed 001: the course hubs in ds100 and stat101 read the shared prepuller's /status in hubkit-system."""
    example = CHART / "examples" / "001-course-hubs-shared.yaml"
    objects = render(
        chart, example, "hubkit-system", "--set", "networkPolicy.metricsNamespaceSelector.matchLabels.a=b"
    )
    policy = find(objects, "NetworkPolicy", "hubkit-services-ingress")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"hubkit.dev/service": "true"}}
    prepuller = find(objects, "Deployment", "hubkit-prepuller")["spec"]["template"]["metadata"]["labels"]
    assert prepuller["hubkit.dev/service"] == "true", "the policy covers the prepuller"
    (rule,) = policy["spec"]["ingress"]
    hub_and_proxy = {"matchExpressions": [{"key": "component", "operator": "In", "values": ["hub", "proxy"]}]}
    by_name = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["ds100", "stat101"]}
    assert rule["from"] == [
        {"podSelector": hub_and_proxy},
        {"namespaceSelector": {"matchExpressions": [by_name]}, "podSelector": hub_and_proxy},
        {"namespaceSelector": {"matchLabels": {"a": "b"}}},
    ]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    # Without the list the policy has no peer outside its namespace but the metrics scraper's.
    alone = render(chart, example, "hubkit-system", "--set", "services.hubNamespaces=null")
    (rule,) = find(alone, "NetworkPolicy", "hubkit-services-ingress")["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": hub_and_proxy}]


def test_services_without_kubernetes_access_get_no_token(chart: Path) -> None:
    objects = render(chart, CHART / "examples" / "004-lsst-research.yaml", "jld")
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    pods = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in deployments}
    assert pods["hubkit-culler"]["automountServiceAccountToken"] is False
    assert pods["hubkit-nfs-keepalive"]["automountServiceAccountToken"] is False
    assert pods["hubkit-prepuller"]["automountServiceAccountToken"] is True
    roles = [o for o in objects if o["kind"] in {"Role", "ClusterRole"}]
    assert not [r for r in roles if "culler" in r["metadata"]["name"] or "keepalive" in r["metadata"]["name"]]


def _images(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Every container image of every workload, by workload name."""
    found: dict[str, set[str]] = {}
    for obj in [o for o in objects if o["kind"] in WORKLOADS]:
        spec = obj["spec"]["template"]["spec"]
        containers = spec.get("initContainers", []) + spec["containers"]
        found[obj["metadata"]["name"]] = {c["image"] for c in containers}
    return found


def test_every_hubkit_image_follows_the_images_key(chart: Path) -> None:
    example = CHART / "examples" / "001-course-hubs-shared.yaml"
    keys = ["--set", "images.registry=registry.example.org/hk", "--set-string", "images.tag=9.9"]
    images = _images(render(chart, example, "hubkit-system", *keys))
    hubkit = {name: refs for name, refs in images.items() if name.startswith("hubkit-")}
    assert hubkit["hubkit-prepuller"] == {"registry.example.org/hk/services:9.9"}
    assert hubkit["hubkit-packing-scheduler"] == {"registry.example.org/hk/user-scheduler:9.9"}
    for name, refs in hubkit.items():
        assert all(ref.startswith("registry.example.org/hk/") and ref.endswith(":9.9") for ref in refs), name
    # An image's own repository and tag win.
    own = [
        "--set",
        "services.image.repository=mirror.example.org/services",
        "--set-string",
        "services.image.tag=1",
    ]
    images = _images(render(chart, example, "hubkit-system", *keys, *own))
    assert images["hubkit-prepuller"] == {"mirror.example.org/services:1"}
    assert images["hubkit-packing-scheduler"] == {"registry.example.org/hk/user-scheduler:9.9"}


def test_the_local_images_values_point_every_pod_at_make_images(chart: Path, tmp_path: Path) -> None:
    """`images/build-local.sh values`: HubKit's pods and z2jh's hub, proxy and user scheduler run the images
    `make images` builds (z2jh's pause image for placeholders and image pullers stays upstream's)."""
    script = CHART.parents[1] / "images" / "build-local.sh"
    values = tmp_path / "local.yaml"
    values.write_text(subprocess.run(["bash", str(script), "values"], capture_output=True, text=True).stdout)
    example = CHART / "examples" / "004-lsst-research.yaml"
    images = _images(render(chart, example, "jld", "-f", str(values)))
    for name in ("hub", "proxy", "user-scheduler", "hubkit-culler", "hubkit-prepuller", "hubkit-nfs"):
        assert images[name], name
        for ref in images[name]:
            assert re.fullmatch(r"localhost/hubkit-local/[a-z-]+:local", ref), (name, ref)
    assert images["hub"] == {"localhost/hubkit-local/hub:local"}
    assert images["proxy"] == {"localhost/hubkit-local/proxy:local"}
