"""The spawn menu's GPU counts come from one shared watch, on the real API server (issue 20, load)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from hubkit.spawner.capacity_watch import ClusterCapacity
from hubkit.spawner.gpu import Capacity, GpuRequest, gpu_capacity
from hubkit.spawner.kube_storage import KubeStorage
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.nodes import KWOK_TAINT

from .conftest import z2jh_hub_kubeconfig

A100 = GpuRequest(count=1, product="NVIDIA-A100-SXM4-40GB", name="A100")
GPU_NODE = "kwok-gpu-1"


def _pod(name: str, gpus: int) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": "10m"}}
    if gpus:
        resources["limits"] = {"nvidia.com/gpu": str(gpus)}
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeName": GPU_NODE,  # bound directly, as the scheduler would
            "tolerations": [
                {**KWOK_TAINT, "operator": "Equal"},
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            ],
            "containers": [{"name": "c", "image": "busybox", "resources": resources}],
        },
    }


async def _storage(kubeconfig: Path) -> tuple[KubeStorage, Any]:
    api_client = await config.new_client_from_config(config_file=str(kubeconfig))
    return KubeStorage(client.CoreV1Api(api_client), timeout=10), api_client


@pytest.fixture
async def capacity(control_plane: ControlPlane) -> AsyncIterator[ClusterCapacity]:
    storage, api_client = await _storage(control_plane.admin_kubeconfig)
    watched = ClusterCapacity(storage, logging.getLogger("test.capacity"))
    try:
        yield watched
    finally:
        watched.stop()
        await api_client.close()


async def _a100(capacity: ClusterCapacity) -> Capacity:
    snapshot = await capacity.snapshot(10)
    assert snapshot is not None, (capacity.nodes.error, capacity.pods.error)
    return gpu_capacity(A100, *snapshot)


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"the watch never showed {what}")
        await asyncio.sleep(0.1)


async def test_counts_follow_pods_and_nodes_through_one_list_each(
    control_plane: ControlPlane, namespace: str, capacity: ClusterCapacity
) -> None:
    base = await _a100(capacity)
    assert base.total == 4
    pods = f"/api/v1/namespaces/{namespace}/pods"
    control_plane.request("POST", pods, _pod("two-gpus", 2))
    control_plane.request("POST", pods, _pod("cpu-only", 0))
    await _until(lambda: _free_is(capacity, base.free - 2), "two GPUs taken")
    kept = [key for key in capacity.pods.items if key.startswith(f"{namespace}/")]
    assert kept == [f"{namespace}/two-gpus"], "a pod that requests no GPU is not kept"

    control_plane.request("DELETE", f"{pods}/two-gpus?gracePeriodSeconds=0")
    await _until(lambda: _free_is(capacity, base.free), "the GPUs given back")

    node = f"/api/v1/nodes/{GPU_NODE}"
    patch = "application/merge-patch+json"
    control_plane.request("PATCH", node, {"spec": {"unschedulable": True}}, content_type=patch)
    try:
        await _until(lambda: _total_is(capacity, 0), "the cordoned GPU node")
    finally:
        control_plane.request("PATCH", node, {"spec": {"unschedulable": None}}, content_type=patch)
    await _until(lambda: _total_is(capacity, 4), "the uncordoned GPU node")

    # 200 students open the form at once: the counts come from memory, the API server is not asked.
    results = await asyncio.gather(*(_a100(capacity) for _ in range(200)))
    assert {r.total for r in results} == {4}
    assert (capacity.nodes.lists, capacity.pods.lists) == (1, 1)


async def _free_is(capacity: ClusterCapacity, free: int) -> bool:
    return (await _a100(capacity)).free == free


async def _total_is(capacity: ClusterCapacity, total: int) -> bool:
    return (await _a100(capacity)).total == total


async def test_without_cluster_rights_the_menu_says_unknown_and_the_log_says_why(
    control_plane: ControlPlane, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """z2jh's hub Role alone (no ClusterRole for nodes and pods): no numbers, a plain log line, no crash."""
    namespace = control_plane.create_namespace(f"no-rights-{secrets.token_hex(3)}")
    try:
        storage, api_client = await _storage(z2jh_hub_kubeconfig(control_plane, namespace, tmp_path))
        watched = ClusterCapacity(storage, logging.getLogger("test.capacity"))
        try:
            with caplog.at_level(logging.WARNING, "test.capacity"):
                assert await watched.snapshot(3) is None
            assert watched.nodes.error is not None
            assert watched.nodes.error.startswith("403")
            assert "watching nodes failed (403" in caplog.text
        finally:
            watched.stop()
            await api_client.close()
    finally:
        control_plane.delete_namespace(namespace)
