"""The spawn menu's view of GPU capacity: one watch of nodes and one of unfinished pods, shared by every form.

Listing every node and every pod of the cluster on each form render (what this replaces) costs two
cluster-wide lists per student: 200 students opening the form at 9 am made 400. A hub process now keeps
one :class:`ClusterCapacity` per API server. Each of its two :class:`Mirror` s lists once, then follows
the changes (watching again from the last resourceVersion when the server ends a watch, listing again
after 410 Gone, backing off after errors) and keeps only what :func:`gpu.gpu_capacity` reads: a node's
name, labels, schedulability and allocatable resources; a pod's node, phase and its containers'
extended-resource limits and requests. Pods that request no extended resource are not kept.

While a mirror is not in sync (never listed yet, or its watch failing) the menu says GPU availability is
unknown rather than show numbers that may be stale.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.watch import Watch

from .kube_storage import KubeStorage, Lister

WATCH_SECONDS = 300  # how long one watch request lasts before it is renewed from its resourceVersion
WATCH_GRACE_SECONDS = 30  # a watch silent for longer than WATCH_SECONDS + this is treated as broken
MAX_BACKOFF_SECONDS = 60.0


def _key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def slim_node(node: Mapping[str, Any]) -> dict[str, Any]:
    """What the GPU count needs of a node."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return {
        "metadata": {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})},
        "spec": {"unschedulable": bool(spec.get("unschedulable"))},
        "status": {"allocatable": dict(status.get("allocatable") or {})},
    }


def _extended(resources: Mapping[str, Any] | None) -> dict[str, Any]:
    """Extended resources (``vendor/name``, such as ``nvidia.com/gpu``) of a limits/requests block."""
    return {name: value for name, value in (resources or {}).items() if "/" in name}


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the GPU count needs of a pod, or None for a pod that requests no extended resource."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    containers = []
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        limits, requests = _extended(resources.get("limits")), _extended(resources.get("requests"))
        if limits or requests:
            containers.append({"resources": {"limits": limits, "requests": requests}})
    if not containers:
        return None
    return {
        "spec": {"nodeName": spec.get("nodeName"), "containers": containers},
        "status": {"phase": status.get("phase")},
    }


class Mirror:
    """An in-memory copy of one kind of object, kept current by a watch; ``synced`` is set while it is."""

    def __init__(
        self,
        what: str,
        lister: Lister,
        slim: Callable[[Mapping[str, Any]], dict[str, Any] | None],
        log: logging.Logger,
        list_timeout: float,
    ) -> None:
        self.what = what
        self.lister = lister
        self.list_timeout = list_timeout
        self.slim = slim
        self.log = log
        self.items: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.lists = 0  # full lists made: one at start, then one per 410 Gone or failure
        self.error: str | None = None

    def _apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        slim = None if kind == "DELETED" else self.slim(obj)
        if slim is None:
            self.items.pop(key, None)
        else:
            self.items[key] = slim

    async def _relist(self) -> str:
        """Replace the copy with a full list; returns the list's resourceVersion."""
        self.lists += 1
        response = await self.lister(_preload_content=False, _request_timeout=self.list_timeout)
        if response.status >= 400:  # without preloading, the client does not raise for the status
            raise ApiException(status=response.status, reason=response.reason)
        listing = json.loads(await response.read())
        items = {}
        for obj in listing.get("items") or []:
            slim = self.slim(obj)
            if slim is not None:
                items[_key(obj)] = slim
        self.items = items
        self.error = None
        self.synced.set()
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def _follow(self, version: str) -> None:
        """Apply watch events from ``version`` on, renewing the watch; returns only by raising."""
        while True:
            watch = Watch()
            stream = watch.stream(
                self.lister,
                resource_version=version,
                timeout_seconds=WATCH_SECONDS,
                allow_watch_bookmarks=True,
                _request_timeout=WATCH_SECONDS + WATCH_GRACE_SECONDS,
            )
            async with watch:
                async for event in stream:
                    if event["type"] != "BOOKMARK":
                        self._apply(event["type"], event["raw_object"])
            version = watch.resource_version or version

    async def run(self) -> None:
        """List, then follow, forever (until cancelled); after a failure wait, doubling up to a minute."""
        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                version = await self._relist()
                await self._follow(version)
            except ApiException as e:
                if e.status == 410:  # the resourceVersion is too old to watch from: list again
                    continue
                reason = f"{e.status} {e.reason}"
            except (OSError, TimeoutError, ValueError) as e:  # connection, read timeout, bad JSON
                reason = str(e) or type(e).__name__
            self.synced.clear()
            self.error = reason
            if time.monotonic() - started > MAX_BACKOFF_SECONDS:
                delay = 1.0  # it had been working for a while: a new failure starts the back-off anew
            self.log.warning(
                "GPU capacity: watching %s failed (%s); menus say availability is unknown; retry in %.0f s",
                self.what,
                reason,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)


class ClusterCapacity:
    """Nodes and GPU-requesting pods of the whole cluster, watched once per hub process."""

    def __init__(self, storage: KubeStorage, log: logging.Logger) -> None:
        self.nodes = Mirror("nodes", storage.node_lister(), slim_node, log, storage.timeout)
        self.pods = Mirror("pods", storage.active_pod_lister(), slim_pod, log, storage.timeout)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._tasks or any(task.done() for task in self._tasks):
            for task in self._tasks:
                task.cancel()
            self._tasks = [asyncio.ensure_future(m.run()) for m in (self.nodes, self.pods)]

    async def snapshot(self, timeout: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        """(nodes, pods) once both mirrors are in sync, or None if they are not within ``timeout`` s."""
        self.start()
        try:
            await asyncio.wait_for(asyncio.gather(self.nodes.synced.wait(), self.pods.synced.wait()), timeout)
        except TimeoutError:
            return None
        return list(self.nodes.items.values()), list(self.pods.items.values())

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []


_SHARED: dict[tuple[str, int], ClusterCapacity] = {}


def shared_capacity(storage: KubeStorage, log: logging.Logger) -> ClusterCapacity:
    """The hub process's ClusterCapacity for this API server (made, not started, on first use)."""
    key = (storage.server, id(asyncio.get_running_loop()))
    if key not in _SHARED:
        _SHARED[key] = ClusterCapacity(storage, log)
    return _SHARED[key]
