"""NetworkPolicies are enforced: real kube-network-policies (nfqueue) on the process node."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubkit_testing import podnet
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.tools import REPO_ROOT, go_tool

from ._net import client_pod, eventually, probe, run_pods, server_pod

METADATA_IP = "169.254.169.254"


def _apply(cp: ControlPlane, ns: str, policy: dict[str, Any]) -> None:
    cp.request("POST", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", policy)


def _reaches(pid: int, ip: str, port: int) -> bool:
    return probe(pid, ip, port, "/")[0]


def test_default_deny_blocks_and_an_allow_rule_opens_exactly_its_port(
    net_plane: ControlPlane, net_namespace: str
) -> None:
    cp, ns = net_plane, net_namespace
    pids = run_pods(cp, ns, server_pod("web", {"app": "web"}, [8080, 8081]), client_pod("client"))
    web = cp.request("GET", f"/api/v1/namespaces/{ns}/pods/web")["status"]["podIP"]
    for port in (8080, 8081):
        eventually(lambda port=port: _reaches(pids["client"], web, port), 20, f"reaching {web}:{port}")  # type: ignore[misc]

    _apply(
        cp,
        ns,
        {"metadata": {"name": "default-deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
    )
    eventually(lambda: not _reaches(pids["client"], web, 8080), 30, "default-deny blocking port 8080")
    assert not _reaches(pids["client"], web, 8081)

    _apply(
        cp,
        ns,
        {
            "metadata": {"name": "allow-8080"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 8080, "protocol": "TCP"}]}],
            },
        },
    )
    eventually(lambda: _reaches(pids["client"], web, 8080), 30, "the allow rule opening port 8080")
    assert probe(pids["client"], web, 8080, "/")[1].strip() == "web:8080"
    assert not _reaches(pids["client"], web, 8081), "the allow rule opened more than its port"


@pytest.fixture
def metadata_host(net_plane: ControlPlane) -> Iterator[str]:
    """A stand-in for the cloud metadata service: an HTTP server at 169.254.169.254 in a network
    namespace of its own, plugged into the platform's bridge (named with the slot's prefix, so a
    crashed run's leftover goes with the pod network)."""
    assert net_plane.net is not None
    net = net_plane.net
    netns, veth = f"{net.netns_prefix()}metadata", f"hk{net.slot}md"
    podnet.ip("netns", "add", netns)
    server: subprocess.Popen[bytes] | None = None
    try:
        podnet.ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        podnet.ip("link", "set", veth, "master", net.bridge, "up")
        podnet.ip("-n", netns, "addr", "add", f"{METADATA_IP}/32", "dev", "eth0")
        podnet.ip("-n", netns, "link", "set", "eth0", "up")
        podnet.ip("-n", netns, "route", "add", str(net.cidr), "dev", "eth0")
        server = subprocess.Popen(
            ["ip", "netns", "exec", netns, "python3", "-m", "http.server", "80", "--bind", METADATA_IP],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield netns
    finally:
        if server is not None:
            server.kill()
            server.wait()
        podnet.ip("netns", "delete", netns, check=False)


def _chart_policies(workdir: Path, namespace: str) -> list[dict[str, Any]]:
    """The chart's NetworkPolicies as `helm template` renders them (zero-to-jupyterhub left out)."""
    chart = workdir / "hubkit"
    shutil.copytree(REPO_ROOT / "helm" / "hubkit", chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta.pop("dependencies", None)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    example = REPO_ROOT / "helm" / "hubkit" / "examples" / "000-ldap-workbench.yaml"
    result = subprocess.run(
        [
            go_tool("helm"),
            "template",
            "hubkit",
            str(chart),
            "--namespace",
            namespace,
            "-f",
            str(example),
            "--show-only",
            "templates/networkpolicies.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_the_charts_policy_blocks_the_metadata_address_for_user_pods(
    net_plane: ControlPlane, net_namespace: str, metadata_host: str, tmp_path: Path
) -> None:
    cp, ns = net_plane, net_namespace
    pids = run_pods(
        cp,
        ns,
        server_pod("web", {"app": "web"}, [8080]),
        client_pod("jupyter-ada", {"component": "singleuser-server"}),
    )
    user = pids["jupyter-ada"]
    # The metadata address is link-local: the user pod reaches it on the bridge, as a node would.
    podnet.ip("-n", _netns_of(cp, ns, "jupyter-ada"), "route", "add", f"{METADATA_IP}/32", "dev", "eth0")
    web = cp.request("GET", f"/api/v1/namespaces/{ns}/pods/web")["status"]["podIP"]
    eventually(lambda: _reaches(user, METADATA_IP, 80), 20, "the user pod reaching the metadata stand-in")

    policies = _chart_policies(tmp_path, ns)
    assert "hubkit-singleuser-egress" in {p["metadata"]["name"] for p in policies}
    for policy in policies:
        _apply(cp, ns, policy)

    eventually(lambda: not _reaches(user, METADATA_IP, 80), 30, "the chart's policy blocking 169.254.169.254")
    assert _reaches(user, web, 8080), "the chart's egress policy blocked more than the metadata address"


def _netns_of(cp: ControlPlane, ns: str, pod: str) -> str:
    assert cp.net is not None
    uid = cp.request("GET", f"/api/v1/namespaces/{ns}/pods/{pod}")["metadata"]["uid"]
    return cp.net.netns_name(uid[:8])
