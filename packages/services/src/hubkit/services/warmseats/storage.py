"""The only broker code that talks to the Kubernetes API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client

from hubkit.services.common.kube_builders import priority_class
from hubkit.services.common.kube_runtime import WatchCache, ensure_priority_class

from .builders import MANAGED_BY
from .exceptions import KubernetesError
from .settings import WarmSeatsSettings

__all__ = ["WarmSeatsStore"]


class WarmSeatsStore:
    def __init__(self, api: client.ApiClient, settings: WarmSeatsSettings, on_change: Callable[[], None]):
        self.api = api
        self.settings = settings
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        mine = f"app.kubernetes.io/managed-by={MANAGED_BY}"
        self.user_pods = WatchCache(
            "user pods",
            self.core.list_pod_for_all_namespaces,
            on_change,
            label_selector=settings.user_pod_selector,
        )
        self.placeholders = WatchCache(
            "placeholders",
            self.core.list_namespaced_pod,
            on_change,
            namespace=settings.namespace,
            label_selector=mine,
        )
        # The scheduler records one "Preempted" event per victim, naming the preemptor as `related`.
        self.preemptions = WatchCache(
            "preemption events",
            self.core.list_namespaced_event,
            on_change,
            namespace=settings.namespace,
            field_selector="reason=Preempted",
        )
        self.caches = [self.user_pods, self.placeholders, self.preemptions]

    async def synced(self) -> None:
        await asyncio.gather(*(c.synced.wait() for c in self.caches))

    async def ensure_priority_class(self) -> None:
        body: Any = priority_class(
            self.settings.priority_class_name,
            self.settings.priority_value,
            "HubKit warm seats: placeholders any user pod preempts; not expendable for the autoscaler.",
            preemption_policy="PreemptLowerPriority",
        )
        await ensure_priority_class(self.api, body, KubernetesError)

    async def apply_deployment(self, body: Any) -> None:
        """Create the Deployment, or bring an existing one to ``body``'s spec."""
        name, ns = body["metadata"]["name"], body["metadata"]["namespace"]
        try:
            await self.apps.create_namespaced_deployment(ns, body)
            return
        except client.ApiException as e:
            if e.status != 409:
                raise KubernetesError(f"cannot create Deployment {ns}/{name}: {e.status} {e.reason}") from e
        try:
            await self.apps.patch_namespaced_deployment(
                name, ns, {"metadata": {"labels": body["metadata"]["labels"]}, "spec": body["spec"]}
            )
        except client.ApiException as e:
            raise KubernetesError(f"cannot update Deployment {ns}/{name}: {e.status} {e.reason}") from e

    async def deployments(self) -> list[dict[str, Any]]:
        try:
            result = await self.apps.list_namespaced_deployment(
                self.settings.namespace, label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}"
            )
        except client.ApiException as e:
            raise KubernetesError(f"cannot list Deployments in {self.settings.namespace}: {e.status}") from e
        return [self.api.sanitize_for_serialization(d) for d in result.items]

    async def delete_deployment(self, name: str) -> None:
        try:
            await self.apps.delete_namespaced_deployment(name, self.settings.namespace)
        except client.ApiException as e:
            if e.status != 404:
                raise KubernetesError(f"cannot delete Deployment {name}: {e.status} {e.reason}") from e
