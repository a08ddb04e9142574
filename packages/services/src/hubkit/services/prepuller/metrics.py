"""Prometheus metrics of the prepuller (one registry per instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["PrepullerMetrics"]


class PrepullerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.image_nodes = Gauge(
            "hubkit_prepuller_image_nodes",
            "Eligible nodes per image, by state (present, missing, unknown: the node's image list is full).",
            ["image", "state"],
            registry=r,
        )
        self.node_missing = Gauge(
            "hubkit_prepuller_node_missing_images", "Eligible images a node lacks.", ["node"], registry=r
        )
        self.node_missing_age = Gauge(
            "hubkit_prepuller_node_missing_oldest_seconds",
            "How long the node's longest-missing image has been missing.",
            ["node"],
            registry=r,
        )
        self.pulls = Counter(
            "hubkit_prepuller_pulls", "Finished pull pods by result.", ["result"], registry=r
        )
        self.in_flight = Gauge("hubkit_prepuller_pulls_in_flight", "Pull pods running now.", registry=r)
        self.menu_errors = Gauge(
            "hubkit_prepuller_menu_errors", "Published image menus that could not be read.", registry=r
        )
        self.reconciles = Counter(
            "hubkit_prepuller_reconciles", "Reconcile passes by result.", ["result"], registry=r
        )
