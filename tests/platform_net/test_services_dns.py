"""Services route and cluster DNS answers: real kube-proxy (iptables mode) and CoreDNS."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from hubkit_testing.clusternet import DNS_SERVICE_IP
from hubkit_testing.controlplane import ControlPlane

from ._net import client_pod, eventually, in_pod, probe, run_pods, server_pod, wait_for_endpoints


def test_a_pod_reaches_another_through_a_service_by_its_dns_name(
    net_plane: ControlPlane, net_namespace: str
) -> None:
    cp, ns = net_plane, net_namespace
    pids = run_pods(cp, ns, server_pod("web", {"app": "web"}, [8080]), client_pod("client"))
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    created = cp.request("POST", f"/api/v1/namespaces/{ns}/services", service)
    cluster_ip = created["spec"]["clusterIP"]
    wait_for_endpoints(cp, ns, "web", 1)

    resolv = in_pod(pids["client"], "cat", "/etc/resolv.conf").stdout
    assert resolv.splitlines() == [
        f"nameserver {DNS_SERVICE_IP}",
        f"search {ns}.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]
    answers: dict[str, str] = {}

    def reached(name: str) -> bool:
        ok, answers[name] = probe(pids["client"], name, 80, "/")
        return ok

    for name in ("web", f"web.{ns}", f"web.{ns}.svc.cluster.local", cluster_ip):
        eventually(lambda name=name: reached(name), 30, f"the client reaching http://{name}/")  # type: ignore[misc]
        assert answers[name].strip() == "web:8080", answers
    looked_up = in_pod(pids["client"], "getent", "hosts", f"web.{ns}.svc.cluster.local").stdout
    assert looked_up.split()[0] == cluster_ip


def test_the_host_reaches_a_node_port(net_plane: ControlPlane, net_namespace: str) -> None:
    cp, ns = net_plane, net_namespace
    run_pods(cp, ns, server_pod("web", {"app": "web"}, [8080]))
    service = {
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    created = cp.request("POST", f"/api/v1/namespaces/{ns}/services", service)
    node_port = created["spec"]["ports"][0]["nodePort"]
    wait_for_endpoints(cp, ns, "web", 1)
    body: list[str] = []

    def reached() -> bool:
        try:
            body.append(
                urllib.request.urlopen(f"http://{cp.gateway}:{node_port}/", timeout=2).read().decode()
            )
            return True
        except OSError:
            return False

    eventually(reached, 30, f"the host reaching NodePort {cp.gateway}:{node_port}")
    assert body[-1].strip() == "web:8080"


def test_dns_policy_default_keeps_the_nodes_resolver(net_plane: ControlPlane, net_namespace: str) -> None:
    pids = run_pods(net_plane, net_namespace, client_pod("plain", dns_policy="Default"))
    assert in_pod(pids["plain"], "cat", "/etc/resolv.conf").stdout == Path("/etc/resolv.conf").read_text()
