"""The keepalive's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["KeepaliveMetrics"]


class KeepaliveMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.last_success = Gauge(
            "hubkit_nfs_last_success_timestamp_seconds",
            "When a probe of the volume last succeeded.",
            ["volume"],
            registry=registry,
        )
        self.latency = Histogram(
            "hubkit_nfs_probe_step_seconds",
            "Latency of each probe step (connect, write, fsync, read, stat).",
            ["volume", "step"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.failures = Counter(
            "hubkit_nfs_probe_failures",
            "Failed probes by volume, step and kind (error, timeout).",
            ["volume", "step", "kind"],
            registry=registry,
        )
        self.healthy = Gauge(
            "hubkit_nfs_volume_healthy", "1 when the volume is healthy.", ["volume"], registry=registry
        )
        self.unhealthy_since = Gauge(
            "hubkit_nfs_volume_unhealthy_since_timestamp_seconds",
            "Since when the volume is unhealthy (0: it is not).",
            ["volume"],
            registry=registry,
        )
        self.stuck = Gauge(
            "hubkit_nfs_stuck_probes",
            "Killed probes still stuck in the kernel.",
            ["volume"],
            registry=registry,
        )
