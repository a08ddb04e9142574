"""``hubkit-prepuller``: pulls the images of every hub's menu onto the nodes where they can run."""

from __future__ import annotations

from hubkit.services.common.command import service_main
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
    return service_main("hubkit-prepuller", __doc__, PrepullerSettings, run, argv)
