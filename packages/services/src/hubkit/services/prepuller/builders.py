"""Pure builders of the prepuller's pull pods (its PriorityClass: ``common.kube_builders``)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from hubkit.services.image_menu_contract import Placement, Toleration

from .settings import PrepullerSettings

__all__ = ["IMAGE_ANNOTATION", "MANAGED_BY", "NODE_LABEL", "pull_pod", "pull_pod_name"]

MANAGED_BY = "hubkit-prepuller"
NODE_LABEL = "hubkit.dev/prepull-node"
IMAGE_ANNOTATION = "hubkit.dev/prepull-image"


def pull_pod_name(node: str, image: str) -> str:
    """Deterministic, so two replicas or a restart never pull the same image twice on a node."""
    digest = hashlib.sha256(f"{node}\0{image}".encode()).hexdigest()[:10]
    return f"pull-{node[:40].strip('.-')}-{digest}".replace(".", "-")


def _tolerations(placement: Placement, extra: Sequence[Toleration]) -> list[dict[str, Any]]:
    seen: list[Toleration] = []
    for t in (*extra, *placement.tolerations):
        if t not in seen:
            seen.append(t)
    return [t.model_dump(exclude_none=True) for t in seen]


def pull_pod(settings: PrepullerSettings, node: str, image: str, placement: Placement) -> dict[str, Any]:
    """A pod bound to ``node`` by ``nodeName`` that makes the kubelet pull ``image``.

    No resource requests (BestEffort): the kubelet admits it even on a node full of placeholders, and it
    never displaces anyone. It passes the "restricted" Pod Security Standard. It names the configured
    ``image_pull_secrets``, so private images are pulled with the credentials the user pods use.
    """
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pull_pod_name(node, image),
            "namespace": settings.namespace,
            "labels": {"app.kubernetes.io/managed-by": MANAGED_BY, NODE_LABEL: node[:63]},
            "annotations": {IMAGE_ANNOTATION: image, "hubkit.dev/prepull-node-name": node},
        },
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "priorityClassName": settings.priority_class_name,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": _tolerations(placement, settings.tolerations),
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            **(
                {"imagePullSecrets": [{"name": n} for n in settings.image_pull_secrets]}
                if settings.image_pull_secrets
                else {}
            ),
            "containers": [
                {
                    "name": "pull",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": list(settings.command),
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
