"""GPU profiles: the overrides a ``gpu`` block stands for, and free capacity from nodes and pods (pure).

A profile may carry ``"gpu": {"count": 1, "resource": "nvidia.com/gpu", "product": "NVIDIA-A100-SXM4-40GB",
"name": "A100", "shm_size": "8Gi"}``. HubKit turns it into resource limits, a node selector on the
``nvidia.com/gpu.product`` label, a toleration for the ``nvidia.com/gpu`` taint, a memory-backed
``/dev/shm`` and the NVIDIA environment, applied before the profile's own ``kubespawner_override``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigError

PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_TAINT = "nvidia.com/gpu"
GPU_KEYS = {"count", "resource", "product", "name", "shm_size"}


@dataclass(frozen=True)
class GpuRequest:
    count: int
    resource: str = "nvidia.com/gpu"
    product: str = ""
    name: str = ""
    shm_size: str = "1Gi"

    @property
    def label(self) -> str:
        """How people call this GPU type ("A100", "nvidia.com/mig-1g.10gb")."""
        return self.name or self.product or self.resource


def parse_gpu(block: Any, where: str) -> GpuRequest | None:
    if block is None:
        return None
    if not isinstance(block, dict) or set(block) - GPU_KEYS:
        raise ConfigError(f"{where}: 'gpu' takes only {sorted(GPU_KEYS)}")
    count = block.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"{where}: gpu count must be a positive integer")
    return GpuRequest(
        count=count,
        resource=str(block.get("resource", "nvidia.com/gpu")),
        product=str(block.get("product", "")),
        name=str(block.get("name", "")),
        shm_size=str(block.get("shm_size", "1Gi")),
    )


def gpu_override(gpu: GpuRequest) -> dict[str, Any]:
    """A kubespawner_override for the GPU request (merged by the documented rules)."""
    override: dict[str, Any] = {
        "extra_resource_limits": {gpu.resource: str(gpu.count)},
        "extra_resource_guarantees": {gpu.resource: str(gpu.count)},
        "tolerations": [{"key": GPU_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "hubkit-dshm", "emptyDir": {"medium": "Memory", "sizeLimit": gpu.shm_size}}],
        "volume_mounts": [{"name": "hubkit-dshm", "mountPath": "/dev/shm"}],
        "environment": {"NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
    }
    if gpu.product:
        override["node_selector"] = {PRODUCT_LABEL: gpu.product}
    return override


@dataclass(frozen=True)
class Capacity:
    total: int
    free: int


def _quantity(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def gpu_capacity(
    gpu: GpuRequest, nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> Capacity:
    """Allocatable GPUs of the type on schedulable nodes, and how many running/bound pods leave free."""
    eligible: dict[str, int] = {}
    for node in nodes:
        if _get(node, "spec", "unschedulable"):
            continue
        labels = _get(node, "metadata", "labels") or {}
        if gpu.product and labels.get(PRODUCT_LABEL) != gpu.product:
            continue
        count = _quantity((_get(node, "status", "allocatable") or {}).get(gpu.resource, 0))
        if count:
            eligible[str(_get(node, "metadata", "name"))] = count
    used = 0
    for pod in pods:
        if _get(pod, "spec", "nodeName") not in eligible:
            continue
        if _get(pod, "status", "phase") in ("Succeeded", "Failed"):
            continue
        for container in _get(pod, "spec", "containers") or []:
            resources = container.get("resources") or {}
            wanted = (resources.get("limits") or {}).get(gpu.resource) or (
                resources.get("requests") or {}
            ).get(gpu.resource)
            used += _quantity(wanted or 0)
    total = sum(eligible.values())
    return Capacity(total=total, free=max(total - used, 0))


def availability_text(gpu: GpuRequest, capacity: Capacity) -> tuple[str, bool]:
    """The menu's line for a GPU profile, and whether it can start now."""
    if capacity.total == 0:
        return f"No {gpu.label} GPUs are in this cluster right now.", False
    if capacity.free < gpu.count:
        return f"All {capacity.total} {gpu.label} GPUs are in use; try again later.", False
    return f"{capacity.free} of {capacity.total} {gpu.label} GPUs free.", True


def unschedulable_message(gpu: GpuRequest, capacity: Capacity) -> str:
    """What the user reads when their GPU pod could not be placed in time."""
    if capacity.total and capacity.free < gpu.count:
        return f"All {capacity.total} {gpu.label} GPUs are in use; try again later or pick a CPU profile."
    return f"No {gpu.label} GPU could be found for your server; try again later or pick a CPU profile."
