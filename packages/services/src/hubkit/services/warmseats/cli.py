"""``hubkit-warmseats``: the command (see :mod:`..common.cli`).

Its own option: ``--print-scheduler-config`` prints the shared packing scheduler's
KubeSchedulerConfiguration (YAML) for these settings and exits.
"""

from __future__ import annotations

import argparse
import json

import yaml
from kubernetes_asyncio.client import ApiClient

from hubkit.services.common.cli import Running, ServiceCommand, run_service
from hubkit.services.common.kube_runtime import reconciler_running

from .metrics import WarmSeatsMetrics
from .scheduler_config import SchedulerConfigInput, scheduler_configuration
from .service import WarmSeatBroker
from .settings import WarmSeatsSettings
from .storage import WarmSeatsStore

__all__ = ["COMMAND", "main"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--print-scheduler-config",
        action="store_true",
        help="print the shared packing scheduler's KubeSchedulerConfiguration (YAML) and exit",
    )


def _print_scheduler_config(args: argparse.Namespace, settings: WarmSeatsSettings) -> int | None:
    if not args.print_scheduler_config:
        return None
    config = scheduler_configuration(
        SchedulerConfigInput(settings.scheduler_name, lock_namespace=settings.namespace)
    )
    print(yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False), end="")
    return 0


async def _build(settings: WarmSeatsSettings, args: argparse.Namespace) -> Running:
    def make(api: ApiClient) -> WarmSeatBroker:
        return WarmSeatBroker(settings, WarmSeatsStore(api, settings, lambda: None), WarmSeatsMetrics())

    return await reconciler_running(settings.kubeconfig, (settings.listen_host, settings.listen_port), make)


COMMAND = ServiceCommand(
    prog="hubkit-warmseats",
    description="One warm-seat broker per cluster: placeholders in several sizes on a calendar.",
    settings=WarmSeatsSettings,
    build=_build,
    add_arguments=_arguments,
    before_run=_print_scheduler_config,
)


def main(argv: list[str] | None = None) -> int:
    return run_service(COMMAND, argv)
