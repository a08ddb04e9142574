"""The tiny HTTP face of every service: ``/metrics`` (Prometheus) and ``/health`` (JSON).

Both answer at the root and under the service's hub prefix (``JUPYTERHUB_SERVICE_PREFIX``, e.g.
``/services/hubkit-culler/``), so they work directly and through the hub's proxy. ``/health`` answers
200 when the service is healthy and 503 when not, with the JSON body the service's health callback
returns; neither endpoint needs a token (they expose no user data).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

__all__ = ["HealthCallback", "ServiceHTTPServer"]

HealthCallback = Callable[[], tuple[bool, dict[str, Any]]]
"""Returns (healthy, JSON-serialisable body) for ``/health``."""


class _MetricsHandler(RequestHandler):
    def initialize(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(generate_latest(self.registry))


class _HealthHandler(RequestHandler):
    def initialize(self, health: HealthCallback) -> None:
        self.health = health

    def get(self) -> None:
        healthy, body = self.health()
        self.set_status(200 if healthy else 503)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(body))


class ServiceHTTPServer:
    """Serve ``/metrics`` from ``registry`` and ``/health`` from ``health`` (call ``start``/``stop``)."""

    def __init__(self, registry: CollectorRegistry, health: HealthCallback, prefix: str = "/") -> None:
        prefixes = {"/", "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"}
        routes: list[Any] = []
        for p in sorted(prefixes):
            routes.append((rf"{p}metrics/?", _MetricsHandler, {"registry": registry}))
            routes.append((rf"{p}health/?", _HealthHandler, {"health": health}))
        self._app = Application(routes, log_function=_quiet_log)
        self._server: HTTPServer | None = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the port."""
        sockets = bind_sockets(port, host)
        self.port = int(sockets[0].getsockname()[1])
        self._server = HTTPServer(self._app)
        self._server.add_sockets(sockets)
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _quiet_log(handler: RequestHandler) -> None:
    """Scrapes and probes arrive every few seconds and would drown the log; errors are logged by tornado."""
