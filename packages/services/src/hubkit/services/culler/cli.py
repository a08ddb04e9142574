"""``hubkit-culler``: the command JupyterHub runs as a managed service (see :mod:`..common.cli`).

Its own options: ``--dry-run`` (cull nothing; print what would be culled and why) and ``--once`` (one
sweep, no status server; exit 1 when the sweep could not run).
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from prometheus_client import CollectorRegistry

from hubkit.services.common.calendar import CalendarSource
from hubkit.services.common.cli import Running, ServiceCommand, run_service
from hubkit.services.common.hubapi import HubClient, RetryPolicy
from hubkit.services.common.runtime import hub_service_env, listen_address

from .metrics import CullerMetrics
from .service import Culler, SweepReport
from .settings import CullerSettings

__all__ = ["COMMAND", "build_culler", "main", "print_report"]


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
    calendar = None
    if settings.calendar is not None:
        c = settings.calendar
        calendar = CalendarSource(c.path, c.url, timedelta(seconds=c.refresh_seconds))
    return Culler(settings, client, CullerMetrics(registry), calendar)


def print_report(report: SweepReport) -> None:
    """The dry-run output: one line per server or user that would be culled, with policy and reason."""
    for d in sorted(report.culled, key=lambda d: d.target):
        kind = "user" if d.server is None else "server"
        print(f"would cull {kind} {d.target}: {d.reason} [policy {d.policy}]", flush=True)
    print(f"{len(report.culled)} to cull, {report.checked} servers checked, {report.held} held", flush=True)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be culled and why; cull nothing"
    )
    parser.add_argument("--once", action="store_true", help="run one sweep and exit (no status server)")


async def _build(settings: CullerSettings, args: argparse.Namespace) -> Running:
    if args.dry_run:
        settings = settings.model_copy(update={"dry_run": True})
    env = hub_service_env()
    registry = CollectorRegistry()
    culler = build_culler(settings, env.api_url, env.api_token, registry)
    return Running(
        work=culler.run(once=args.once, on_report=print_report if settings.dry_run else None),
        registry=registry,
        health=culler.health,
        status=culler.status,
        listen=None if args.once else listen_address(settings.listen, None),
        close=[culler.client.aclose],
    )


COMMAND = ServiceCommand(
    prog="hubkit-culler",
    description="Cull idle JupyterHub servers and users.",
    settings=CullerSettings,
    build=_build,
    add_arguments=_arguments,
)


def main(argv: list[str] | None = None) -> int:
    return run_service(COMMAND, argv)
