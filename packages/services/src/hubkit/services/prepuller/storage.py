"""The only prepuller code that talks to the Kubernetes API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from hubkit.services.common.kube_builders import priority_class
from hubkit.services.common.kube_runtime import WatchCache, ensure_priority_class
from hubkit.services.image_menu_contract import MENU_LABEL

from .builders import MANAGED_BY
from .exceptions import KubernetesError
from .settings import PrepullerSettings

__all__ = ["PrepullerStore"]

log = logging.getLogger("hubkit.services.prepuller")


class PrepullerStore:
    """Watch caches of menus, nodes and pull pods, and the few writes the prepuller makes."""

    def __init__(self, api: client.ApiClient, settings: PrepullerSettings, on_change: Callable[[], None]):
        self.api = api
        self.settings = settings
        self.core = client.CoreV1Api(api)
        selector = f"{MENU_LABEL}=true"
        self.menus: list[WatchCache] = (
            [
                WatchCache(
                    f"menus in {ns}",
                    self.core.list_namespaced_config_map,
                    on_change,
                    namespace=ns,
                    label_selector=selector,
                )
                for ns in settings.menu_namespaces
            ]
            if settings.menu_namespaces
            else [
                WatchCache(
                    "menus", self.core.list_config_map_for_all_namespaces, on_change, label_selector=selector
                )
            ]
        )
        node_selector = ",".join(f"{k}={v}" for k, v in settings.node_selector.items())
        self.nodes = WatchCache("nodes", self.core.list_node, on_change, label_selector=node_selector)
        self.pods = WatchCache(
            "pull pods",
            self.core.list_namespaced_pod,
            on_change,
            namespace=settings.namespace,
            label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}",
        )
        self.caches = [*self.menus, self.nodes, self.pods]

    def menu_objects(self) -> list[dict[str, Any]]:
        return [o for cache in self.menus for o in cache.objects.values()]

    async def synced(self) -> None:
        await asyncio.gather(*(c.synced.wait() for c in self.caches))

    async def ensure_priority_class(self) -> None:
        body: Any = priority_class(
            self.settings.priority_class_name,
            self.settings.priority_value,
            "HubKit prepuller pull pods: expendable, never preempt anyone.",
        )
        await ensure_priority_class(self.api, body, KubernetesError)

    async def create_pod(self, body: Any) -> bool:
        """Create a pull pod; False when one of that name already exists."""
        try:
            await self.core.create_namespaced_pod(self.settings.namespace, body)
        except client.ApiException as e:
            if e.status == 409:
                return False
            raise KubernetesError(
                f"cannot create pull pod {self.settings.namespace}/{body['metadata']['name']}: "
                f"{e.status} {e.reason}"
            ) from e
        return True

    async def delete_pod(self, name: str) -> None:
        try:
            await self.core.delete_namespaced_pod(name, self.settings.namespace, grace_period_seconds=0)
        except client.ApiException as e:
            if e.status != 404:
                raise KubernetesError(
                    f"cannot delete pull pod {self.settings.namespace}/{name}: {e.status} {e.reason}"
                ) from e
