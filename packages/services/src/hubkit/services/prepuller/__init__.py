"""``hubkit-prepuller``: pulls the images of every hub's menu onto the nodes where they can run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from hubkit.services.common import ServiceError, SettingsError, load_settings
from hubkit.services.common.kube_runtime import StatusServer, kube_client, serve_until_signalled

from .exceptions import PrepullerError
from .metrics import PrepullerMetrics
from .service import Prepuller
from .settings import PrepullerSettings
from .storage import PrepullerStore

__all__ = ["Prepuller", "PrepullerError", "PrepullerSettings", "main", "run"]


async def run(settings: PrepullerSettings) -> None:
    """Run the prepuller and its status server until SIGTERM/SIGINT."""
    api = await kube_client(settings.kubeconfig)
    store = PrepullerStore(api, settings, lambda: None)
    prepuller = Prepuller(settings, store, PrepullerMetrics())
    server = StatusServer(prepuller.metrics.registry, prepuller.status, prepuller.health)
    server.start(settings.listen_host, settings.listen_port)
    await serve_until_signalled(prepuller.run(), server, api)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubkit-prepuller", description=__doc__)
    parser.add_argument(
        "--config", type=Path, help="settings file (.yaml or .json; default $HUBKIT_PREPULLER_CONFIG)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(PrepullerSettings, args.config, env_prefix="HUBKIT_PREPULLER_")
    except SettingsError as e:
        print(f"hubkit-prepuller: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(settings))
    except ServiceError as e:
        print(f"hubkit-prepuller: {e}", file=sys.stderr)
        return 1
    return 0
