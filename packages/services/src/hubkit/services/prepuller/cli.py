"""``hubkit-prepuller``: the command (see :mod:`..common.cli`); no options of its own."""

from __future__ import annotations

import argparse

from kubernetes_asyncio.client import ApiClient

from hubkit.services.common.cli import Running, ServiceCommand, run_service
from hubkit.services.common.kube_runtime import reconciler_running

from .metrics import PrepullerMetrics
from .service import Prepuller
from .settings import PrepullerSettings
from .storage import PrepullerStore

__all__ = ["COMMAND", "main"]


async def _build(settings: PrepullerSettings, args: argparse.Namespace) -> Running:
    def make(api: ApiClient) -> Prepuller:
        return Prepuller(settings, PrepullerStore(api, settings, lambda: None), PrepullerMetrics())

    return await reconciler_running(settings.kubeconfig, (settings.listen_host, settings.listen_port), make)


COMMAND = ServiceCommand(
    prog="hubkit-prepuller",
    description="Pull the images of every hub's menu onto the nodes where they can run.",
    settings=PrepullerSettings,
    build=_build,
)


def main(argv: list[str] | None = None) -> int:
    return run_service(COMMAND, argv)
