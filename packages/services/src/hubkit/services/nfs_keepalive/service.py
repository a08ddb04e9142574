"""The keepalive's loop: probe every configured NFS volume periodically; ``status()`` is its /health."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from hubkit.services.nfs_keepalive.health import ProbeResult, VolumeHealth
from hubkit.services.nfs_keepalive.metrics import KeepaliveMetrics
from hubkit.services.nfs_keepalive.probe import ProbeRunner
from hubkit.services.nfs_keepalive.settings import KeepaliveSettings

__all__ = ["Keepalive"]

log = logging.getLogger("hubkit.services.nfs_keepalive")


class Keepalive:
    """One probe loop per volume; ``status()`` is the /health body."""

    def __init__(self, settings: KeepaliveSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = KeepaliveMetrics(registry)
        self.health = {v.name: VolumeHealth(v.name) for v in settings.volumes}
        self.runners = {
            v.name: ProbeRunner(
                v,
                settings.file_name,
                v.timeout_seconds or settings.timeout_seconds,
                settings.max_stuck_probes,
            )
            for v in settings.volumes
        }
        for v in settings.volumes:
            self.metrics.healthy.labels(v.name).set(1)
            self.metrics.unhealthy_since.labels(v.name).set(0)

    def status(self) -> tuple[bool, dict[str, Any]]:
        volumes = {name: h.model() for name, h in self.health.items()}
        healthy = all(v["healthy"] for v in volumes.values())
        return healthy, {
            "service": "hubkit-nfs-keepalive",
            "healthy": healthy,
            "checked_at": datetime.now(UTC).isoformat(),
            "interval_seconds": self.settings.interval_seconds,
            "volumes": volumes,
        }

    def record(self, result: ProbeResult) -> None:
        name, m = result.volume, self.metrics
        health = self.health[name]
        change = health.record(result)
        m.stuck.labels(name).set(len(self.runners[name].stuck))
        for step, seconds in result.latencies.items():
            m.latency.labels(name, step).observe(seconds)
        if result.ok:
            m.last_success.labels(name).set(result.finished.timestamp())
            m.healthy.labels(name).set(1)
            m.unhealthy_since.labels(name).set(0)
        else:
            m.failures.labels(
                name, result.failed_step or "?", "timeout" if result.timed_out else "error"
            ).inc()
            m.healthy.labels(name).set(0)
            assert health.unhealthy_since is not None
            m.unhealthy_since.labels(name).set(health.unhealthy_since.timestamp())
        if change == "unhealthy":
            log.error("volume %s is UNHEALTHY: step %s: %s", name, result.failed_step, result.error)
        elif change == "recovered":
            log.warning("volume %s recovered (write %.3f s)", name, result.latencies.get("write", 0.0))
        elif not result.ok:
            log.error(
                "volume %s still unhealthy (since %s): step %s: %s",
                name,
                health.unhealthy_since.isoformat() if health.unhealthy_since else "?",
                result.failed_step,
                result.error,
            )

    async def probe_once(self, name: str) -> ProbeResult:
        try:
            result = await self.runners[name].probe()
        except OSError as e:  # cannot even start a worker (out of processes, memory): still a failure
            runner = self.runners[name]
            result = ProbeResult(name, runner.clock(), {}, "start", f"cannot start a probe: {e}")
        self.record(result)
        return result

    async def run(self) -> None:
        """Probe every volume every ``interval_seconds``, each volume on its own, until cancelled."""

        async def loop(name: str) -> None:
            while True:
                await self.probe_once(name)
                await asyncio.sleep(self.settings.interval_seconds)

        log.info("probing %d volume(s) every %g s", len(self.health), self.settings.interval_seconds)
        await asyncio.gather(*(loop(name) for name in self.health))
