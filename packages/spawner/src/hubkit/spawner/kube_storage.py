"""The only module of hubkit-spawner that calls the Kubernetes API (``kubernetes_asyncio``).

``capacity_watch`` watches through the list functions handed out here (``node_lister``,
``active_pod_lister``); it never names an API call itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from kubernetes_asyncio.client import V1ConfigMap
from kubernetes_asyncio.client.rest import ApiException

from .exceptions import KubernetesStorageError

ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
# A list call of kubernetes_asyncio's CoreV1Api, its selectors bound: called with the list/watch keywords.
Lister = Callable[..., Awaitable[Any]]


class KubeStorage:
    """Create and delete the objects HubKit adds beside the pod (the NSS ConfigMap), and the menu."""

    def __init__(self, core_api: Any, timeout: float) -> None:
        self.api = core_api
        self.timeout = timeout
        self.calls = 0

    async def _call(self, what: str, coro: Any) -> Any:
        self.calls += 1
        try:
            return await asyncio.wait_for(coro, self.timeout)
        except ApiException as e:
            raise KubernetesStorageError(f"{what}: {e.status} {e.reason}") from e

    async def replace_configmap(self, configmap: V1ConfigMap) -> None:
        """Create ``configmap``; an older one of the same name (immutable) is deleted first."""
        ns, name = configmap.metadata.namespace, configmap.metadata.name
        try:
            await self._call(
                f"create configmap {ns}/{name}", self.api.create_namespaced_config_map(ns, configmap)
            )
            return
        except KubernetesStorageError as e:
            if not isinstance(e.__cause__, ApiException) or e.__cause__.status != 409:
                raise
        await self.delete_configmap(ns, name)
        await self._call(
            f"create configmap {ns}/{name}", self.api.create_namespaced_config_map(ns, configmap)
        )

    async def apply_configmap(self, body: dict[str, Any]) -> str:
        """Create ``body``, or replace the existing one when its data or labels differ.

        Returns ``"created"``, ``"replaced"`` or ``"unchanged"`` (nothing written: the resourceVersion stays).
        """
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        try:
            current = await self._call(
                f"read configmap {ns}/{name}", self.api.read_namespaced_config_map(name, ns)
            )
        except KubernetesStorageError as e:
            if not isinstance(e.__cause__, ApiException) or e.__cause__.status != 404:
                raise
            await self._call(f"create configmap {ns}/{name}", self.api.create_namespaced_config_map(ns, body))
            return "created"
        labels = current.metadata.labels or {}
        same_labels = all(labels.get(k) == v for k, v in (meta.get("labels") or {}).items())
        if (current.data or {}) == body.get("data", {}) and same_labels:
            return "unchanged"
        # The resourceVersion makes the replace fail (409) rather than overwrite a concurrent change.
        replacement = {**body, "metadata": {**meta, "resourceVersion": current.metadata.resource_version}}
        await self._call(
            f"replace configmap {ns}/{name}", self.api.replace_namespaced_config_map(name, ns, replacement)
        )
        return "replaced"

    async def delete_configmap(self, namespace: str, name: str) -> None:
        """Delete a ConfigMap; one that is already gone is fine."""
        try:
            await self._call(
                f"delete configmap {namespace}/{name}",
                self.api.delete_namespaced_config_map(name, namespace, grace_period_seconds=0),
            )
        except KubernetesStorageError as e:
            if not isinstance(e.__cause__, ApiException) or e.__cause__.status != 404:
                raise

    async def set_owner(self, namespace: str, name: str, pod_name: str, pod_uid: str) -> None:
        """Let the garbage collector delete the ConfigMap with its pod, should the hub miss it."""
        patch = {
            "metadata": {
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": pod_name,
                        "uid": pod_uid,
                        "blockOwnerDeletion": False,
                    }
                ]
            }
        }
        await self._call(
            f"set owner of configmap {namespace}/{name}",
            self.api.patch_namespaced_config_map(name, namespace, patch),
        )

    @property
    def server(self) -> str:
        """The API server's URL."""
        return str(self.api.api_client.configuration.host)

    def node_lister(self) -> Lister:
        """Lists (or, with ``watch=True``, watches) every node."""
        return partial(self.api.list_node)

    def active_pod_lister(self) -> Lister:
        """Lists (or watches) the unfinished pods of every namespace."""
        return partial(self.api.list_pod_for_all_namespaces, field_selector=ACTIVE_PODS)

    async def list_nodes(self) -> list[dict[str, Any]]:
        """All nodes, as plain (camelCase) dicts."""
        result = await self._call("list nodes", self.api.list_node())
        return [self.api.api_client.sanitize_for_serialization(n) for n in result.items]

    async def list_active_pods(self) -> list[dict[str, Any]]:
        """Pods of all namespaces that are not finished, as plain dicts."""
        result = await self._call(
            "list pods", self.api.list_pod_for_all_namespaces(field_selector=ACTIVE_PODS)
        )
        return [self.api.api_client.sanitize_for_serialization(p) for p in result.items]

    async def delete_pod(self, namespace: str, name: str) -> None:
        try:
            await self._call(
                f"delete pod {namespace}/{name}",
                self.api.delete_namespaced_pod(name, namespace, grace_period_seconds=0),
            )
        except KubernetesStorageError as e:
            if not isinstance(e.__cause__, ApiException) or e.__cause__.status != 404:
                raise

    async def read_secret_data(self, namespace: str, name: str) -> tuple[str, dict[str, str]]:
        """A Secret's type and ``data`` (base64 values), for pull-secret credentials."""
        secret = await self._call(
            f"read secret {namespace}/{name}", self.api.read_namespaced_secret(name, namespace)
        )
        return str(secret.type or ""), dict(secret.data or {})
