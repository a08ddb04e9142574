"""``hubkit-nfs-keepalive``: probe every configured NFS volume periodically; serve /health and /metrics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from hubkit.services.common.exceptions import ServiceError
from hubkit.services.common.httpserver import ServiceHTTPServer
from hubkit.services.common.runtime import setup_logging
from hubkit.services.common.settings import load_settings
from hubkit.services.nfs_keepalive.health import ProbeResult, VolumeHealth
from hubkit.services.nfs_keepalive.metrics import KeepaliveMetrics
from hubkit.services.nfs_keepalive.probe import ProbeRunner
from hubkit.services.nfs_keepalive.settings import ENV_PREFIX, KeepaliveSettings

__all__ = ["Keepalive", "main"]

log = logging.getLogger("hubkit-nfs-keepalive")


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

    async def run(self, stop: asyncio.Event) -> None:
        async def loop(name: str) -> None:
            while not stop.is_set():
                await self.probe_once(name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.interval_seconds)

        await asyncio.gather(*(loop(name) for name in self.health))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hubkit-nfs-keepalive", description="Keep NFS volumes awake; report health."
    )
    p.add_argument("--config", type=Path, help="YAML or JSON settings file (or $HUBKIT_NFS_KEEPALIVE_CONFIG)")
    p.add_argument("--debug", action="store_true")
    return p


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings(KeepaliveSettings, args.config, env_prefix=ENV_PREFIX)
    setup_logging("hubkit-nfs-keepalive", args.debug)
    registry = CollectorRegistry()
    keepalive = Keepalive(settings, registry)
    server = ServiceHTTPServer(registry, keepalive.status, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"))
    host, port = _listen(settings)
    server.start(host, port)
    log.info(
        "probing %d volume(s) every %g s; /health on http://%s:%d",
        len(settings.volumes),
        settings.interval_seconds,
        host,
        server.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await keepalive.run(stop)
    finally:
        server.stop()
    return 0


def _listen(settings: KeepaliveSettings) -> tuple[str, int]:
    if settings.listen:
        host, port = settings.listen.rsplit(":", 1)
        return host, int(port)
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:9102"))
    return url.hostname or "127.0.0.1", url.port or 9102


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ServiceError as e:
        print(f"hubkit-nfs-keepalive: {e}", file=sys.stderr)
        return 2
