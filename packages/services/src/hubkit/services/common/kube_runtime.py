"""Plumbing of the Kubernetes-facing services (the prepuller and the warm-seat broker).

A Kubernetes client, list-then-watch caches of raw objects, and creating a PriorityClass once. (The
status server, signals and exit codes are every service's: :mod:`.cli`, :mod:`.httpserver`.)
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kubernetes_asyncio import client, config
from prometheus_client import CollectorRegistry

from .cli import Running
from .exceptions import SettingsError

__all__ = ["Reconciler", "WatchCache", "ensure_priority_class", "kube_client", "reconciler_running", "utcnow"]

log = logging.getLogger("hubkit.services")


def utcnow() -> datetime:
    return datetime.now(UTC)


async def kube_client(kubeconfig: str | None) -> client.ApiClient:
    """An API client from a kubeconfig file, or the pod's service account when none is given.

    Raises :class:`SettingsError` (exit code 2) when neither can be loaded.
    """
    if kubeconfig and not await asyncio.to_thread(Path(kubeconfig).is_file):
        raise SettingsError(f"the kubeconfig {kubeconfig} does not exist (or is not a file)")
    try:
        if kubeconfig:
            return await config.new_client_from_config(config_file=kubeconfig, persist_config=False)
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except (OSError, config.ConfigException) as e:
        where = f"the kubeconfig {kubeconfig}" if kubeconfig else "the pod's service account"
        raise SettingsError(f"cannot load {where}: {e}") from e
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


class _Metrics(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...


class Reconciler(Protocol):
    """What the prepuller and the warm-seat broker have in common for the runtime."""

    @property
    def metrics(self) -> _Metrics: ...

    def health(self) -> tuple[bool, dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    async def run(self) -> None: ...


async def reconciler_running(
    kubeconfig: str | None, listen: tuple[str, int], make: Callable[[client.ApiClient], Reconciler]
) -> Running:
    """A Kubernetes-facing service for :func:`~.cli.run_service`: an API client, the reconciler ``make``
    builds on it, its status server on ``listen``; the client is closed after the reconciler stops."""
    api = await kube_client(kubeconfig)
    reconciler = make(api)
    return Running(
        work=reconciler.run(),
        registry=reconciler.metrics.registry,
        health=reconciler.health,
        status=reconciler.status,
        listen=listen,
        close=[api.close],
    )
