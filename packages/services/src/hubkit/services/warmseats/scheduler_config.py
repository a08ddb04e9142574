"""The shared packing scheduler's KubeSchedulerConfiguration.

One scheduler profile that every hub's user pods and all placeholders name (``schedulerName``): a single
scheduler cache, so preemption decisions never fight (z2jh#1592), and ``NodeResourcesFit`` scoring with
``MostAllocated`` so pods pack onto the fullest node and empty nodes can be removed by the autoscaler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SchedulerConfigInput", "scheduler_configuration"]


@dataclass(frozen=True)
class SchedulerConfigInput:
    scheduler_name: str
    kubeconfig: str = ""  # empty: the scheduler pod's service account
    leader_elect: bool = True
    lock_namespace: str = "kube-system"
    # Extra resources packed like CPU and memory (a GPU node should fill up before another is used).
    resource_weights: dict[str, int] = field(default_factory=lambda: {"nvidia.com/gpu": 3})


def scheduler_configuration(inp: SchedulerConfigInput) -> dict[str, Any]:
    resources = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
    resources += [{"name": n, "weight": w} for n, w in sorted(inp.resource_weights.items())]
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": inp.kubeconfig},
        "leaderElection": {
            "leaderElect": inp.leader_elect,
            "resourceName": inp.scheduler_name,
            "resourceNamespace": inp.lock_namespace,
        },
        "profiles": [
            {
                "schedulerName": inp.scheduler_name,
                "plugins": {
                    "score": {
                        "disabled": [{"name": "NodeResourcesBalancedAllocation"}],
                        "enabled": [{"name": "NodeResourcesFit", "weight": 10}],
                    }
                },
                "pluginConfig": [
                    {
                        "name": "NodeResourcesFit",
                        "args": {"scoringStrategy": {"type": "MostAllocated", "resources": resources}},
                    }
                ],
            }
        ],
    }
