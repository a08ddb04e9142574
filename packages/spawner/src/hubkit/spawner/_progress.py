"""Spawner mixin: a progress message for every step a start waits on, besides Kubernetes' events.

Kubernetes reports scheduling and image pulls as events; the steps around them (checking the options,
the home provisioner, creating the pod, the node setting up the pod, the server coming up) make none.
The spawner records those as ``hubkit_steps``; :meth:`ProgressMixin.progress` merges both in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from traitlets import HasTraits

POLL_SECONDS = 0.5
WATCH_SECONDS = 0.1  # the pod reflector is in memory: looking is cheap


def pod_step(pod: dict[str, Any] | None) -> str | None:
    """The step a pod from the reflector shows (pure): set up on a node, or None."""
    spec, status = (pod or {}).get("spec") or {}, (pod or {}).get("status") or {}
    node, phase = spec.get("nodeName"), status.get("phase")
    if node and phase == "Pending":
        return f"Setting up your server on {node}: network, storage and files."
    if node and phase == "Running":
        # A node that sets a pod up faster than the spawner looks is seen here first.
        return f"Your server's process is running on {node}."
    return None


def event_time(raw: dict[str, Any]) -> float:
    """When a Kubernetes event happened (epoch seconds; +inf when it carries no time)."""
    for key in ("eventTime", "lastTimestamp", "firstTimestamp"):
        value = raw.get(key)
        if value:
            try:
                return datetime.fromisoformat(str(value)).timestamp()
            except ValueError:
                continue
    return float("inf")


def next_percent(percent: float) -> float:
    """Each message moves the bar a third of the way to 90%, as KubeSpawner's events do."""
    return percent + (90 - percent) / 3


class ProgressMixin(HasTraits):
    """Mixed into HubKitSpawner before the mixin that translates Kubernetes' events."""

    if TYPE_CHECKING:
        log: logging.Logger
        namespace: str
        pod_name: str
        pod_reflector: Any
        hubkit_steps: list[str]
        hubkit_step_times: list[float]

    def _step(self, message: str) -> None:
        """Record one step this start now waits on (shown once on the progress page)."""
        if message not in self.hubkit_steps:
            self.log.debug("Spawn step of %s: %s", self.pod_name, message)
            self.hubkit_steps.append(message)
            self.hubkit_step_times.append(time.time())

    def _observe_pod(self) -> None:
        reflector = self.pod_reflector
        if reflector is not None:
            text = pod_step(reflector.pods.get(f"{self.namespace}/{self.pod_name}"))
            if text:
                self._step(text)

    async def _watch_pod_steps(self) -> None:
        """Record the node's setup step even when nobody watches the progress page (until cancelled)."""
        while True:
            self._observe_pod()
            await asyncio.sleep(WATCH_SECONDS)

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """The steps and the translated Kubernetes events of this start, in the order they happened.

        A page opened late gets the whole history: each event comes after the steps recorded before it.
        """
        events = super().progress().__aiter__()  # type: ignore[misc]  # the events mixin's
        shown, percent = 0, 0.0
        pending: asyncio.Future[Any] = asyncio.ensure_future(events.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({pending}, timeout=POLL_SECONDS)
                if pending in done:
                    try:
                        event = pending.result()
                    except StopAsyncIteration:
                        break
                    pending = asyncio.ensure_future(events.__anext__())
                    until = event_time(event.get("raw_event") or {})
                    while shown < len(self.hubkit_steps) and self.hubkit_step_times[shown] <= until:
                        percent = next_percent(percent)
                        yield {"progress": int(percent), "message": self.hubkit_steps[shown]}
                        shown += 1
                    percent = next_percent(percent)
                    yield {**event, "progress": int(percent)}
                    continue
                for text in self.hubkit_steps[shown:]:
                    percent = next_percent(percent)
                    yield {"progress": int(percent), "message": text}
                shown = len(self.hubkit_steps)
        finally:
            pending.cancel()
        for text in self.hubkit_steps[shown:]:
            percent = next_percent(percent)
            yield {"progress": int(percent), "message": text}
