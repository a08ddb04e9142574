"""``hubkit-warmseats``: one warm-seat broker per cluster, placeholders in several sizes on a calendar."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

import yaml

from hubkit.services.common import ServiceError, SettingsError, load_settings
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubkit-warmseats", description=__doc__)
    parser.add_argument(
        "--config", type=Path, help="settings file (.yaml or .json; default $HUBKIT_WARMSEATS_CONFIG)"
    )
    parser.add_argument(
        "--print-scheduler-config",
        action="store_true",
        help="print the shared packing scheduler's KubeSchedulerConfiguration (YAML) and exit",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(WarmSeatsSettings, args.config, env_prefix="HUBKIT_WARMSEATS_")
    except SettingsError as e:
        print(f"hubkit-warmseats: {e}", file=sys.stderr)
        return 2
    if args.print_scheduler_config:
        config = scheduler_configuration(
            SchedulerConfigInput(settings.scheduler_name, lock_namespace=settings.namespace)
        )
        print(yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False), end="")
        return 0
    try:
        asyncio.run(run(settings))
    except ServiceError as e:
        print(f"hubkit-warmseats: {e}", file=sys.stderr)
        return 1
    return 0
