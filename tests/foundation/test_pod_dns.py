"""The resolv.conf the process kubelet writes for each dnsPolicy (poddns.resolv_conf, a pure builder)."""

from __future__ import annotations

from typing import Any

from hubkit_testing.poddns import ClusterDNS, resolv_conf

DNS = ClusterDNS("10.96.0.10")


def _pod(policy: str | None = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if policy:
        spec["dnsPolicy"] = policy
    if config:
        spec["dnsConfig"] = config
    return {"metadata": {"namespace": "course"}, "spec": spec}


def test_cluster_first_is_the_default_and_searches_the_pods_namespace_first() -> None:
    assert resolv_conf(_pod(), DNS) == (
        "nameserver 10.96.0.10\n"
        "search course.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5\n"
    )
    assert resolv_conf(_pod("ClusterFirstWithHostNet"), DNS) == resolv_conf(_pod(), DNS)


def test_dns_config_is_merged_into_cluster_first() -> None:
    config = {
        "nameservers": ["10.0.0.2"],
        "searches": ["example.org", "cluster.local"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    }
    assert resolv_conf(_pod("ClusterFirst", config), DNS) == (
        "nameserver 10.96.0.10\nnameserver 10.0.0.2\n"
        "search course.svc.cluster.local svc.cluster.local cluster.local example.org\n"
        "options ndots:2 edns0\n"
    )


def test_none_uses_only_dns_config_and_default_keeps_the_nodes_resolver() -> None:
    config = {"nameservers": ["10.0.0.2"], "searches": ["example.org"]}
    assert resolv_conf(_pod("None", config), DNS) == "nameserver 10.0.0.2\nsearch example.org\n"
    assert resolv_conf(_pod("Default"), DNS) is None


def test_without_a_cluster_dns_cluster_first_falls_back_to_the_nodes_resolver() -> None:
    assert resolv_conf(_pod(), None) is None
    assert resolv_conf(_pod("None", {"nameservers": ["10.0.0.2"]}), None) == "nameserver 10.0.0.2\n"
