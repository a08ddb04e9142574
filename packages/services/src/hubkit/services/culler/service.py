"""``hubkit-culler``: the command JupyterHub runs as a managed service."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from hubkit.services.common.exceptions import ServiceError
from hubkit.services.common.httpserver import ServiceHTTPServer
from hubkit.services.common.hubapi import HubClient, RetryPolicy
from hubkit.services.common.runtime import hub_service_env, setup_logging
from hubkit.services.common.settings import load_settings

from .calendar import CalendarSource
from .metrics import CullerMetrics
from .settings import ENV_PREFIX, CullerSettings
from .sweep import Culler, SweepReport

__all__ = ["build_culler", "main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubkit-culler", description="Cull idle JupyterHub servers and users.")
    p.add_argument("--config", type=Path, help="YAML or JSON settings file (or $HUBKIT_CULLER_CONFIG)")
    p.add_argument("--dry-run", action="store_true", help="print what would be culled and why; cull nothing")
    p.add_argument("--once", action="store_true", help="run one sweep and exit")
    p.add_argument("--debug", action="store_true", help="log debug messages")
    return p


def build_culler(settings: CullerSettings, api_url: str, token: str, registry: CollectorRegistry) -> Culler:
    """A ready-to-sweep :class:`Culler` (its hub client must be closed by the caller)."""
    retry = RetryPolicy(
        attempts=settings.retry_attempts,
        backoff_initial=settings.backoff_initial_seconds,
        backoff_max=settings.backoff_max_seconds,
        timeout=settings.request_timeout_seconds,
    )
    client = HubClient(
        api_url,
        token,
        concurrency=settings.concurrency,
        retry=retry,
        registry=registry,
        metrics_prefix="hubkit_culler",
    )
    calendar = CalendarSource(settings.calendar) if settings.calendar else None
    return Culler(settings, client, CullerMetrics(registry), calendar)


def print_report(report: SweepReport) -> None:
    """The dry-run output: one line per server or user that would be culled, with policy and reason."""
    for d in sorted(report.culled, key=lambda d: d.target):
        kind = "user" if d.server is None else "server"
        print(f"would cull {kind} {d.target}: {d.reason} [policy {d.policy}]", flush=True)
    print(f"{len(report.culled)} to cull, {report.checked} servers checked, {report.held} held", flush=True)


async def _run(args: argparse.Namespace) -> int:
    settings = load_settings(CullerSettings, args.config, env_prefix=ENV_PREFIX)
    if args.dry_run:
        settings = settings.model_copy(update={"dry_run": True})
    log = setup_logging("hubkit-culler", args.debug)
    env = hub_service_env()
    registry = CollectorRegistry()
    culler = build_culler(settings, env.api_url, env.api_token, registry)

    def health() -> tuple[bool, dict[str, object]]:
        r = culler.last_report
        body: dict[str, object] = {"service": "hubkit-culler", "dry_run": settings.dry_run}
        if r is not None:
            body |= {
                "last_sweep": r.started.isoformat(),
                "culled": len(r.culled),
                "failed": len(r.failed),
                "error": r.skipped,
            }
        return r is None or r.skipped is None, body

    server = None
    if not args.once:
        host, port = settings.listen.rsplit(":", 1) if settings.listen else (env.bind_host, env.bind_port)
        if host and port:
            server = ServiceHTTPServer(registry, health, env.prefix)
            server.start(str(host), int(port))
            log.info("metrics and health on http://%s:%s%s", host, port, env.prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while True:
            report = await culler.sweep()
            if settings.dry_run:
                print_report(report)
            if args.once:
                return 0 if report.skipped is None else 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.interval_seconds)
            if stop.is_set():
                return 0
    finally:
        if server is not None:
            server.stop()
        await culler.client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ServiceError as e:
        print(f"hubkit-culler: {e}", file=sys.stderr)
        return 2
