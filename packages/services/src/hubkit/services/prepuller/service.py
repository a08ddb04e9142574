"""The prepuller: reconcile pull pods so every served node holds the images its hubs' menus need there."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from hubkit.services.common.kube_runtime import utcnow
from hubkit.services.image_menu_contract import (
    HUB_LABEL,
    ImageEntry,
    ImageMenu,
    ImageMenuError,
    Placement,
    menu_from_configmap,
)

from .builders import IMAGE_ANNOTATION, pull_pod
from .exceptions import KubernetesError
from .metrics import PrepullerMetrics
from .outcomes import PullOutcome, pull_outcome
from .planning import (
    NodeInfo,
    NodePlan,
    PullLimits,
    choose_pulls,
    merge_menus,
    node_from_object,
    normalize_image,
    plan_nodes,
    since,
)
from .settings import PrepullerSettings
from .storage import PrepullerStore

__all__ = ["Prepuller"]

log = logging.getLogger("hubkit.services.prepuller")


class Prepuller:
    def __init__(
        self,
        settings: PrepullerSettings,
        store: PrepullerStore,
        metrics: PrepullerMetrics | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or PrepullerMetrics()
        self.clock = clock
        self.dirty = asyncio.Event()
        self.first_seen: dict[tuple[str, str], datetime] = {}
        self.confirmed: dict[str, set[str]] = {}  # node → images a pull pod proved present
        self.backoff: dict[tuple[str, str], datetime] = {}
        self.in_flight: dict[str, set[str]] = {}
        self.menu_errors: dict[str, str] = {}
        self.hubs: dict[str, str] = {}  # ConfigMap key → hub name
        self.image_hubs: dict[str, set[str]] = {}
        self.images: dict[str, ImageEntry] = {}
        self.nodes: dict[str, NodeInfo] = {}
        self.plans: dict[str, NodePlan] = {}
        self.last_reconcile: datetime | None = None
        for cache in store.caches:
            cache.on_change = self.wake

    # --- inputs ----------------------------------------------------------------------------------

    def _menus(self) -> list[ImageMenu]:
        menus: list[ImageMenu] = []
        self.image_hubs = {}
        self.hubs = {}
        errors: dict[str, str] = {}
        for obj in self.store.menu_objects():
            meta = obj.get("metadata") or {}
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            hub = (meta.get("labels") or {}).get(HUB_LABEL) or str(meta.get("namespace"))
            try:
                menu = menu_from_configmap(obj)
                if len(menu.images) > self.settings.max_images_per_menu:
                    raise ImageMenuError(
                        f"the menu lists {len(menu.images)} images, more than max_images_per_menu "
                        f"({self.settings.max_images_per_menu})"
                    )
            except ImageMenuError as e:
                errors[key] = str(e)
                if self.menu_errors.get(key) != str(e):
                    log.warning("ignoring the image menu %s of hub %s: %s", key, hub, e)
                continue
            self.hubs[key] = hub
            menus.append(menu)
            for entry in menu.images:
                self.image_hubs.setdefault(normalize_image(entry.image), set()).add(hub)
        self.menu_errors = errors
        if self.settings.extra_images:
            extras = ImageMenu(images=tuple(_extra(i) for i in self.settings.extra_images))
            menus.append(extras)
            for image in self.settings.extra_images:
                self.image_hubs.setdefault(normalize_image(image), set()).add("(extra_images)")
        return menus

    # --- reconcile -------------------------------------------------------------------------------

    async def _collect_pods(self, now: datetime) -> None:
        """Finish pull pods that are done; remember what is in flight."""
        self.in_flight = {}
        for pod in list(self.store.pods.objects.values()):
            meta = pod.get("metadata") or {}
            name = str(meta.get("name"))
            node = str((pod.get("spec") or {}).get("nodeName", ""))
            image = str((meta.get("annotations") or {}).get(IMAGE_ANNOTATION, ""))
            if meta.get("deletionTimestamp"):
                continue
            outcome, reason = pull_outcome(pod, now, self.settings.pull_timeout_seconds)
            stale = node not in self.nodes or image not in self.images
            if outcome is PullOutcome.PULLING and not stale:
                self.in_flight.setdefault(node, set()).add(image)
                continue
            if outcome is PullOutcome.PULLED:
                self.confirmed.setdefault(node, set()).add(image)
                # The kubelet reports its image list periodically: do not pull again meanwhile.
                self.backoff[(node, image)] = now + timedelta(seconds=self.settings.failure_backoff_seconds)
                self.metrics.pulls.labels("succeeded").inc()
                log.info("pulled %s on node %s (pod %s)", image, node, name)
            elif outcome is PullOutcome.FAILED:
                self.backoff[(node, image)] = now + timedelta(seconds=self.settings.failure_backoff_seconds)
                self.metrics.pulls.labels("failed").inc()
                log.warning("pulling %s on node %s failed (pod %s): %s", image, node, name, reason)
            await self.store.delete_pod(name)

    async def reconcile(self) -> None:
        now = self.clock()
        menus = self._menus()
        self.images = merge_menus(menus)
        self.nodes = {
            n.name: n
            for n in (
                node_from_object(o, self.settings.max_node_images) for o in self.store.nodes.objects.values()
            )
            if n.schedulable
        }
        for node in list(self.confirmed):
            if node not in self.nodes:
                del self.confirmed[node]
        await self._collect_pods(now)
        self.plans = plan_nodes(self.images, self.nodes.values(), self.settings.tolerations, self.confirmed)
        since(self.first_seen, self.plans, now)
        self.backoff = {k: v for k, v in self.backoff.items() if v > now}
        blocked: dict[str, set[str]] = {}
        for node, image in self.backoff:
            blocked.setdefault(node, set()).add(image)
        wanted = {
            n: sorted(p.missing, key=lambda i: (self.first_seen[(n, i)], i)) + sorted(p.unknown)
            for n, p in self.plans.items()
        }
        limits = PullLimits(self.settings.per_node_concurrency, self.settings.cluster_concurrency)
        for node, image in choose_pulls(wanted, self.in_flight, limits, blocked):
            body = pull_pod(self.settings, node, image, self.plans[node].eligible[image])
            try:
                created = await self.store.create_pod(body)
            except KubernetesError as e:
                # One refused pull (say a quota, or an image name the API rejects) must not stop the others.
                self.backoff[(node, image)] = now + timedelta(seconds=self.settings.failure_backoff_seconds)
                self.metrics.pulls.labels("refused").inc()
                log.warning("cannot start pulling %s on node %s: %s", image, node, e)
                continue
            if created:
                log.info("pulling %s on node %s (pod %s)", image, node, body["metadata"]["name"])
            self.in_flight.setdefault(node, set()).add(image)
        self.last_reconcile = now
        self._export(now)

    def _export(self, now: datetime) -> None:
        m = self.metrics
        m.image_nodes.clear()
        m.node_missing.clear()
        m.node_missing_age.clear()
        for image in self.images:
            counts = {"present": 0, "missing": 0, "unknown": 0}
            for plan in self.plans.values():
                if image in plan.present:
                    counts["present"] += 1
                elif image in plan.missing:
                    counts["missing"] += 1
                elif image in plan.unknown:
                    counts["unknown"] += 1
            for state, count in counts.items():
                m.image_nodes.labels(image, state).set(count)
        for node, plan in self.plans.items():
            lacking = plan.missing | plan.unknown
            m.node_missing.labels(node).set(len(lacking))
            oldest = min((self.first_seen[(node, i)] for i in lacking), default=now)
            m.node_missing_age.labels(node).set((now - oldest).total_seconds())
        m.in_flight.set(sum(len(v) for v in self.in_flight.values()))
        m.menu_errors.set(len(self.menu_errors))

    # --- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        images = []
        for image, entry in sorted(self.images.items()):
            have = sorted(n for n, p in self.plans.items() if image in p.present)
            lack = sorted(n for n, p in self.plans.items() if image in p.missing)
            unknown = sorted(n for n, p in self.plans.items() if image in p.unknown)
            images.append(
                {
                    "image": image,
                    "hubs": sorted(self.image_hubs.get(image, set())),
                    "profiles": list(entry.profiles),
                    "present": have,
                    "missing": lack,
                    "unknown": unknown,
                    # What the spawner shows as "first start may take a few minutes" when False.
                    "on_every_eligible_node": bool(have) and not lack and not unknown,
                }
            )
        nodes = []
        for node, plan in sorted(self.plans.items()):
            nodes.append(
                {
                    "node": node,
                    "image_list_full": self.nodes[node].image_list_full,
                    "eligible": len(plan.eligible),
                    "present": sorted(plan.present),
                    "missing": {i: self.first_seen[(node, i)].isoformat() for i in sorted(plan.missing)},
                    "unknown": {i: self.first_seen[(node, i)].isoformat() for i in sorted(plan.unknown)},
                    "pulling": sorted(self.in_flight.get(node, set())),
                }
            )
        return {
            "hubs": [{"configmap": k, "hub": h} for k, h in sorted(self.hubs.items())],
            "menu_errors": dict(sorted(self.menu_errors.items())),
            "images": images,
            "nodes": nodes,
            "last_reconcile": self.last_reconcile.isoformat() if self.last_reconcile else None,
        }

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy once reconciled, and as long as reconciles keep happening."""
        last = self.last_reconcile.isoformat() if self.last_reconcile else None
        if self.last_reconcile is None:
            return False, {"message": "not reconciled yet", "last_reconcile": last}
        age = (self.clock() - self.last_reconcile).total_seconds()
        if age > 3 * self.settings.resync_seconds:
            return False, {"message": f"last reconcile {age:.0f} s ago", "last_reconcile": last}
        return True, {"message": "ok", "last_reconcile": last}

    # --- loop ------------------------------------------------------------------------------------

    def wake(self) -> None:
        self.dirty.set()

    async def run(self) -> None:
        """Watch and reconcile until cancelled."""
        await self.store.ensure_priority_class()
        tasks = [asyncio.create_task(c.run()) for c in self.store.caches]
        try:
            await self.store.synced()
            while True:
                self.dirty.clear()
                try:
                    await self.reconcile()
                    self.metrics.reconciles.labels("ok").inc()
                except KubernetesError as e:
                    self.metrics.reconciles.labels("error").inc()
                    log.error("reconcile failed: %s", e)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.dirty.wait(), self.settings.resync_seconds)
                await asyncio.sleep(0.2)  # coalesce bursts of watch events into one pass
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _extra(image: str) -> ImageEntry:
    return ImageEntry(image=image, placements=(Placement(),), profiles=("extra",))
