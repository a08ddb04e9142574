"""Pure builders of Kubernetes objects more than one service creates."""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["priority_class"]

PreemptionPolicy = Literal["Never", "PreemptLowerPriority"]


def priority_class(
    name: str, value: int, description: str, preemption_policy: PreemptionPolicy = "Never"
) -> dict[str, Any]:
    """A non-default PriorityClass labelled as HubKit's.

    ``Never`` (pull pods) never displaces anyone; ``PreemptLowerPriority`` (warm-seat placeholders) is
    Kubernetes' default and lets a placeholder take the room of a pod of lower priority.
    """
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "hubkit"}},
        "value": value,
        "globalDefault": False,
        "preemptionPolicy": preemption_policy,
        "description": description,
    }
