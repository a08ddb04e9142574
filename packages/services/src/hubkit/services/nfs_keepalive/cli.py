"""``hubkit-nfs-keepalive``: the command (see :mod:`..common.cli`); no options of its own.

Its status server listens on ``listen``, else on the ``url`` the hub gives it, else on 127.0.0.1:9102.
"""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry

from hubkit.services.common.cli import Running, ServiceCommand, run_service
from hubkit.services.common.runtime import listen_address
from hubkit.services.nfs_keepalive.service import Keepalive
from hubkit.services.nfs_keepalive.settings import KeepaliveSettings

__all__ = ["COMMAND", "DEFAULT_LISTEN", "main"]

DEFAULT_LISTEN = ("127.0.0.1", 9102)


async def _build(settings: KeepaliveSettings, args: argparse.Namespace) -> Running:
    keepalive = Keepalive(settings, CollectorRegistry())
    return Running(
        work=keepalive.run(),
        registry=keepalive.metrics.registry,
        health=keepalive.status,
        status=lambda: keepalive.status()[1],
        listen=listen_address(settings.listen, DEFAULT_LISTEN),
    )


COMMAND = ServiceCommand(
    prog="hubkit-nfs-keepalive",
    description="Keep NFS volumes awake; report their health.",
    settings=KeepaliveSettings,
    build=_build,
)


def main(argv: list[str] | None = None) -> int:
    return run_service(COMMAND, argv)
