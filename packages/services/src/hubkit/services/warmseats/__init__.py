"""``hubkit-warmseats``: one warm-seat broker per cluster, placeholders in several sizes on a calendar."""

from __future__ import annotations

import argparse
import json

import yaml

from hubkit.services.common.command import service_main
from hubkit.services.common.kube_runtime import StatusServer, kube_client, serve_until_signalled

from .broker import WarmSeatBroker
from .metrics import WarmSeatsMetrics
from .planner import ClassEvent, PlanInput, SizePlan, SizePolicy, plan
from .scheduler_config import SchedulerConfigInput, scheduler_configuration
from .settings import SeatSize, WarmSeatsSettings
from .storage import WarmSeatsStore

__all__ = [
    "ClassEvent",
    "PlanInput",
    "SchedulerConfigInput",
    "SeatSize",
    "SizePlan",
    "SizePolicy",
    "WarmSeatBroker",
    "WarmSeatsSettings",
    "main",
    "plan",
    "run",
    "scheduler_configuration",
]


async def run(settings: WarmSeatsSettings) -> None:
    api = await kube_client(settings.kubeconfig)
    store = WarmSeatsStore(api, settings, lambda: None)
    broker = WarmSeatBroker(settings, store, WarmSeatsMetrics())
    server = StatusServer(broker.metrics.registry, broker.status, broker.health)
    server.start(settings.listen_host, settings.listen_port)
    await serve_until_signalled(broker.run(), server, api)


def _scheduler_config_option(parser: argparse.ArgumentParser) -> None:
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


def main(argv: list[str] | None = None) -> int:
    return service_main(
        "hubkit-warmseats",
        __doc__,
        WarmSeatsSettings,
        run,
        argv,
        add_arguments=_scheduler_config_option,
        before_run=_print_scheduler_config,
    )
