"""The culler's Prometheus metrics (the hub client adds ``hubkit_culler_hub_requests/retries``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CullerMetrics"]


class CullerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.sweeps = Counter(
            "hubkit_culler_sweeps", "Sweeps by result (ok, failed, skipped).", ["result"], registry=registry
        )
        self.sweep_seconds = Histogram(
            "hubkit_culler_sweep_duration_seconds",
            "Wall time of one sweep.",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
        self.last_sweep = Gauge(
            "hubkit_culler_last_sweep_timestamp_seconds", "When the last sweep finished.", registry=registry
        )
        self.checked = Counter(
            "hubkit_culler_servers_checked", "Servers looked at by sweeps.", registry=registry
        )
        self.culls = Counter(
            "hubkit_culler_culls",
            "Servers stopped and users deleted (or, in dry run, that would be), by kind and policy.",
            ["kind", "policy", "dry_run"],
            registry=registry,
        )
        self.failures = Counter(
            "hubkit_culler_cull_failures",
            "Culls the hub refused or that failed, by kind.",
            ["kind"],
            registry=registry,
        )
        self.holds = Gauge(
            "hubkit_culler_held_servers",
            "Servers kept by a calendar hold in the last sweep.",
            registry=registry,
        )
