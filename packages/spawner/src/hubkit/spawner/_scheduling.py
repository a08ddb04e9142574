"""Spawner mixin: GPU capacity in the menu, fast GPU scheduling failures and plain progress messages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tornado import web
from traitlets import Float, HasTraits

from .capacity_watch import shared_capacity
from .events import describe_event, image_sizes
from .exceptions import GpuUnavailable, KubernetesStorageError
from .gpu import availability_text, gpu_capacity, parse_gpu, unschedulable_message
from .profiles import Profile, Selection

if TYPE_CHECKING:
    from .kube_storage import KubeStorage


def _unschedulable(pod: dict[str, Any] | None) -> bool:
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return bool(condition.get("reason") == "Unschedulable")
    return False


class SchedulingMixin(HasTraits):
    """Mixed into HubKitSpawner before KubeSpawner, whose attributes it uses."""

    if TYPE_CHECKING:
        kube_storage: KubeStorage
        log: logging.Logger
        hubkit_selection: Selection | None
        namespace: str
        pod_name: str
        pod_reflector: Any
        user: Any

    gpu_unschedulable_timeout = Float(
        30.0,
        config=True,
        help="""Seconds a GPU pod may stay unschedulable before the spawn fails with a plain message
        ("all 4 A100 GPUs are in use; try again later or pick a CPU profile") and the pod is removed,
        instead of waiting for start_timeout.""",
    )

    async def profile_availability(self, profiles: list[Profile]) -> dict[str, tuple[str, bool]]:
        """slug → (plain availability line, usable now) for GPU profiles, from the hub's shared watch of
        nodes and unfinished pods (no API call per form render)."""
        gpus = {p["slug"]: parse_gpu(p.get("gpu"), p["slug"]) for p in profiles}
        wanted = {slug: gpu for slug, gpu in gpus.items() if gpu is not None}
        if not wanted:
            return {}
        capacity = shared_capacity(self.kube_storage, self.log)
        snapshot = await capacity.snapshot(self.kube_storage.timeout)
        if snapshot is None:
            self.log.warning(
                "Cannot read GPU capacity for %s's menu: %s",
                self.user.name,
                capacity.nodes.error or capacity.pods.error or "the first list has not completed yet",
            )
            return dict.fromkeys(wanted, ("GPU availability is unknown right now.", True))
        nodes, pods = snapshot
        return {slug: availability_text(gpu, gpu_capacity(gpu, nodes, pods)) for slug, gpu in wanted.items()}

    async def _watch_gpu_scheduling(self, selection_ready: asyncio.Event) -> str:
        """Return the user's message once a GPU pod has been unschedulable for the configured time."""
        await selection_ready.wait()
        selection = self.hubkit_selection
        gpu = selection.gpu if selection is not None else None
        while gpu is None:
            await asyncio.Event().wait()  # nothing to watch: waits until cancelled with the spawn
        key = f"{self.namespace}/{self.pod_name}"
        since: float | None = None
        while True:
            await asyncio.sleep(0.5)
            if _unschedulable(self.pod_reflector.pods.get(key)):
                since = since or time.monotonic()
                if time.monotonic() - since >= self.gpu_unschedulable_timeout:
                    capacity = shared_capacity(self.kube_storage, self.log)
                    snapshot = await capacity.snapshot(self.kube_storage.timeout)
                    if snapshot is None:
                        self.log.warning("Cannot read GPU capacity for %s", self.pod_name)
                    nodes, pods = snapshot or ([], [])
                    return unschedulable_message(gpu, gpu_capacity(gpu, nodes, pods))
            else:
                since = None

    async def _run_with_gpu_watch(self, start: Any, selection_ready: asyncio.Event) -> Any:
        """Run the spawn; if the GPU watcher fires first, remove the pod and fail with its message."""
        spawn = asyncio.ensure_future(start)
        watch = asyncio.ensure_future(self._watch_gpu_scheduling(selection_ready))
        done, _ = await asyncio.wait({spawn, watch}, return_when=asyncio.FIRST_COMPLETED)
        if spawn in done:
            watch.cancel()
            return spawn.result()
        spawn.cancel()
        message = watch.result()
        self.log.warning(
            "GPU pod %s/%s unschedulable: %s; removing it", self.namespace, self.pod_name, message
        )
        await self.kube_storage.delete_pod(self.namespace, self.pod_name)
        error = web.HTTPError(503, message.replace("%", "%%"))
        error.jupyterhub_message = message  # type: ignore[attr-defined]
        raise error from GpuUnavailable(message)

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """KubeSpawner's progress events, with Kubernetes' event text told in plain words."""
        seen: set[str] = set()
        sizes: dict[str, int] | None = None
        async for event in super().progress():  # type: ignore[misc]  # KubeSpawner's
            raw = event.get("raw_event") or {}
            if raw.get("reason") == "Pulling" and sizes is None:
                try:
                    sizes = image_sizes(await self.kube_storage.list_nodes())
                except KubernetesStorageError:
                    sizes = {}
            text = describe_event(raw, sizes)
            if text is None or (text in seen and raw.get("reason") != "FailedScheduling"):
                continue
            seen.add(text)
            yield {**event, "message": text}
