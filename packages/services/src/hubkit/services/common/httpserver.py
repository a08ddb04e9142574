"""The HTTP face of every service: ``/health`` and ``/status`` (JSON), ``/metrics`` (Prometheus).

All three answer at the root and under the service's hub prefix (``JUPYTERHUB_SERVICE_PREFIX``, by
default ``/services/<name>/``), so they work directly and through the hub's proxy. None needs a token:
they expose no user data.

- ``/health``: 200 when the service is healthy, 503 when not. The body is the service's own JSON object
  with ``service`` (its name) and ``healthy`` (the same answer as the status code) always set.
- ``/status``: what the service is doing (its own JSON object), 200.
- ``/metrics``: the service's own registry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

__all__ = ["HealthCallback", "StatusCallback", "StatusServer"]

log = logging.getLogger("hubkit.services")

HealthCallback = Callable[[], tuple[bool, Mapping[str, Any]]]
"""Returns (healthy, JSON-serialisable body) for ``/health``."""

StatusCallback = Callable[[], Mapping[str, Any]]
"""Returns the JSON-serialisable body of ``/status``."""

Produce = Callable[[], tuple[int, str, bytes]]


class _Handler(RequestHandler):
    def initialize(self, produce: Produce) -> None:
        self.produce = produce

    def get(self) -> None:
        code, content_type, body = self.produce()
        self.set_status(code)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)


def _log_failures(handler: RequestHandler) -> None:
    """Scrapes and probes arrive every few seconds; only failures are worth a log line."""
    if handler.get_status() >= 500 and handler.get_status() != 503:
        log.warning("%s %s -> %d", handler.request.method, handler.request.uri, handler.get_status())


def _prefixes(prefix: str) -> list[str]:
    inner = prefix.strip("/")
    return sorted({"/", f"/{inner}/" if inner else "/"})


class StatusServer:
    """Serve ``/health``, ``/status`` and ``/metrics`` of the service ``name`` (``start``/``stop``)."""

    def __init__(
        self,
        name: str,
        registry: CollectorRegistry,
        health: HealthCallback,
        status: StatusCallback,
        prefix: str = "/",
    ) -> None:
        def metrics() -> tuple[int, str, bytes]:
            return 200, CONTENT_TYPE_LATEST, generate_latest(registry)

        def health_json() -> tuple[int, str, bytes]:
            healthy, body = health()
            answer = {"service": name, **body, "healthy": healthy}
            return (200 if healthy else 503), "application/json", json.dumps(answer, default=str).encode()

        def status_json() -> tuple[int, str, bytes]:
            return 200, "application/json", json.dumps(dict(status()), indent=1, default=str).encode()

        routes: list[Any] = []
        for p in _prefixes(prefix):
            routes.append((rf"{p}metrics/?", _Handler, {"produce": metrics}))
            routes.append((rf"{p}health/?", _Handler, {"produce": health_json}))
            routes.append((rf"{p}status/?", _Handler, {"produce": status_json}))
        self._app = Application(routes, log_function=_log_failures)
        self._server: HTTPServer | None = None
        self.port = 0

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 = any free port); returns the port."""
        sockets = bind_sockets(port, host)
        self.port = int(sockets[0].getsockname()[1])
        self._server = HTTPServer(self._app)
        self._server.add_sockets(sockets)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
