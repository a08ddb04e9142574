"""Plumbing of the Kubernetes-facing services (the prepuller and the warm-seat broker).

A Kubernetes client, list-then-watch caches of raw objects, the small HTTP server for ``/health``,
``/metrics`` and ``/status``, and the run-until-signalled loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client, config
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from tornado import httpserver, web

__all__ = [
    "StatusServer",
    "WatchCache",
    "ensure_priority_class",
    "kube_client",
    "serve_until_signalled",
    "utcnow",
]

log = logging.getLogger("hubkit.services")


def utcnow() -> datetime:
    return datetime.now(UTC)


async def kube_client(kubeconfig: str | None) -> client.ApiClient:
    """An API client from a kubeconfig file, or the pod's service account when none is given."""
    if kubeconfig:
        return await config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration=configuration)


async def ensure_priority_class(
    api: client.ApiClient, body: Mapping[str, Any], error: Callable[[str], Exception]
) -> None:
    """Create the PriorityClass ``body`` unless one of that name exists.

    An existing one is left alone (its value cannot change). Any other refusal raises ``error``
    with a sentence naming the class and the server's answer.
    """
    name = body["metadata"]["name"]
    try:
        await client.SchedulingV1Api(api).create_priority_class(dict(body))  # type: ignore[arg-type]
    except client.ApiException as e:
        if e.status != 409:
            raise error(f"cannot create PriorityClass {name}: {e.status} {e.reason}") from e


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


class WatchCache:
    """Keeps ``objects`` (key → raw dict) current with a list then a watch; relists after errors or 410.

    ``call`` is a kubernetes_asyncio list method (``CoreV1Api.list_node`` …) with its fixed arguments.
    ``on_change`` runs after every change so a reconciler can wake up.
    """

    def __init__(
        self,
        name: str,
        call: Callable[..., Awaitable[Any]],
        on_change: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        self.name = name
        self.call = call
        self.kwargs = kwargs
        self.on_change = on_change
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()

    async def _json(self, **extra: Any) -> dict[str, Any]:
        resp = await self.call(**self.kwargs, **extra, _preload_content=False)
        try:
            body = await resp.read()
            if resp.status >= 300:
                raise client.ApiException(status=resp.status, reason=body.decode(errors="replace")[:300])
            return dict(json.loads(body))
        finally:
            resp.release()

    async def _list(self) -> str:
        data = await self._json()
        self.objects = {object_key(o): o for o in data.get("items") or []}
        self.synced.set()
        self.on_change()
        return str((data.get("metadata") or {}).get("resourceVersion", ""))

    async def _watch(self, version: str) -> None:
        resp = await self.call(
            **self.kwargs,
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=240,
            _preload_content=False,
        )
        try:
            if resp.status >= 300:
                raise client.ApiException(status=resp.status, reason="watch refused")
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise client.ApiException(status=obj.get("code", 500), reason=obj.get("message", ""))
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self.objects.pop(object_key(obj), None)
                else:
                    self.objects[object_key(obj)] = obj
                self.on_change()
        finally:
            resp.release()

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                version = await self._list()
                backoff = 0.5
                while True:  # a watch ends after timeout_seconds; continue from the last list
                    await self._watch(version)
                    version = await self._list()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the API server restarting, a 410, a dropped connection
                log.warning("watch of %s failed (%s); relisting in %.1f s", self.name, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)


class _Handler(web.RequestHandler):
    def initialize(self, produce: Callable[[], tuple[int, str, bytes]]) -> None:
        self.produce = produce

    def get(self) -> None:
        code, content_type, body = self.produce()
        self.set_status(code)
        self.set_header("Content-Type", content_type)
        self.finish(body)


def _log_failures(handler: web.RequestHandler) -> None:
    """Scrapes and probes arrive every few seconds; only failures are worth a log line."""
    if handler.get_status() >= 500:
        log.warning("%s %s -> %d", handler.request.method, handler.request.uri, handler.get_status())


class StatusServer:
    """``/health``, ``/metrics`` (the service's own registry) and ``/status`` (JSON) on one port."""

    def __init__(
        self,
        registry: CollectorRegistry,
        status: Callable[[], Mapping[str, Any]],
        health: Callable[[], tuple[bool, str]],
    ) -> None:
        def metrics() -> tuple[int, str, bytes]:
            return 200, CONTENT_TYPE_LATEST, generate_latest(registry)

        def status_json() -> tuple[int, str, bytes]:
            return 200, "application/json", json.dumps(status(), indent=1, default=str).encode()

        def health_json() -> tuple[int, str, bytes]:
            ok, message = health()
            body = json.dumps({"ok": ok, "message": message}).encode()
            return (200 if ok else 503), "application/json", body

        self.app = web.Application(
            [
                (r"/metrics", _Handler, {"produce": metrics}),
                (r"/status", _Handler, {"produce": status_json}),
                (r"/health", _Handler, {"produce": health_json}),
            ],
            log_function=_log_failures,
        )
        self.server: httpserver.HTTPServer | None = None

    def start(self, host: str, port: int) -> None:
        self.server = self.app.listen(port, address=host)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            await self.server.close_all_connections()


async def serve_until_signalled(
    work: Coroutine[Any, Any, None], server: StatusServer, api: client.ApiClient
) -> None:
    """Run a Kubernetes-facing service's loop until SIGTERM/SIGINT, then stop its status server and
    close its API client (shared by ``hubkit-prepuller`` and ``hubkit-warmseats``)."""
    task = asyncio.create_task(work)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await server.stop()
        await api.close()
