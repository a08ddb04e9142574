"""Pure builders of the broker's objects: one placeholder Deployment per seat size, and its PriorityClass."""

from __future__ import annotations

from typing import Any

from .settings import SeatSize, WarmSeatsSettings

__all__ = ["MANAGED_BY", "SIZE_LABEL", "deployment_name", "placeholder_deployment", "size_of_pod_name"]

MANAGED_BY = "hubkit-warmseats"
SIZE_LABEL = "hubkit.dev/warmseat-size"
PREFIX = "warmseat-"


def deployment_name(size: str) -> str:
    return PREFIX + size


def size_of_pod_name(pod_name: str) -> str | None:
    """The size of a placeholder pod from its name (``warmseat-<size>-<rs hash>-<suffix>``)."""
    if not pod_name.startswith(PREFIX) or pod_name.count("-") < 3:
        return None
    return pod_name[len(PREFIX) :].rsplit("-", 2)[0]


def placeholder_deployment(settings: WarmSeatsSettings, size: SeatSize, replicas: int) -> dict[str, Any]:
    """Pause pods reserving ``size`` each; a user pod preempts one, the controller recreates it Pending.

    Requests equal limits so a seat reserves exactly what one user of the class requests.
    """
    resources = {
        "cpu": size.cpu,
        "memory": size.memory,
        **{k: str(v) for k, v in size.extended_resources.items()},
    }
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, SIZE_LABEL: size.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(size.name), "namespace": settings.namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            # Placeholders are interchangeable: replace them all at once when the size changes.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "schedulerName": settings.scheduler_name,
                    "priorityClassName": settings.priority_class_name,
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "nodeSelector": dict(size.node_selector),
                    "tolerations": [t.model_dump(exclude_none=True) for t in size.tolerations],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65535,
                        "runAsGroup": 65535,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "pause",
                            "image": settings.pause_image,
                            "resources": {"requests": resources, "limits": resources},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
