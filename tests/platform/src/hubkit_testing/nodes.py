"""Simulated nodes (kwok): realistic capacity, labels and taints for the real scheduler to honour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# kwok manages only nodes with this label; a taint keeps ordinary pods off simulated nodes (their
# containers never run), so a pod lands on one only when it tolerates it.
KWOK_LABEL = {"type": "kwok"}
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    gpu_product: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)


def default_nodes() -> list[NodeSpec]:
    """Two CPU nodes and one node with four A100 GPUs (tainted for GPU pods only)."""
    return [
        NodeSpec("kwok-cpu-1", labels={"hubkit.dev/pool": "cpu"}),
        NodeSpec("kwok-cpu-2", labels={"hubkit.dev/pool": "cpu"}),
        NodeSpec(
            "kwok-gpu-1",
            cpu="8",
            memory="64Gi",
            gpus=4,
            gpu_product="NVIDIA-A100-SXM4-40GB",
            labels={"hubkit.dev/pool": "gpu"},
            taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        ),
    ]


def kwok_node_manifest(spec: NodeSpec) -> dict[str, Any]:
    resources: dict[str, str] = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods)}
    labels = {
        **KWOK_LABEL,
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "kwok",
        **spec.labels,
    }
    if spec.gpus:
        resources[spec.gpu_resource] = str(spec.gpus)
        labels["nvidia.com/gpu.product"] = spec.gpu_product
        labels["nvidia.com/gpu.count"] = str(spec.gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake"}},
        "spec": {"taints": [KWOK_TAINT, *spec.taints]},
        "status": {"capacity": resources, "allocatable": resources},
    }
