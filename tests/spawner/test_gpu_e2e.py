"""GPU profiles on the real scheduler: capacity in the menu, and a fast plain failure when none is free."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.nodes import KWOK_TAINT

from .conftest import HubMaker, objects_in

A100 = "NVIDIA-A100-SXM4-40GB"
RADIO_DISABLED = re.compile(r'<input type="radio" name="profile" value="a100"[^>]*\bdisabled>')
GPU_CONFIG = f"""
c.HubKitSpawner.gpu_unschedulable_timeout = 12  # > slow_spawn_timeout: the failure comes via progress
c.HubKitSpawner.profile_list = [
    {{"display_name": "CPU", "slug": "cpu", "default": True}},
    {{
        "display_name": "One A100 GPU",
        "slug": "a100",
        "description": "For deep learning",
        "allowed_groups": ["course:*:instructor"],
        "gpu": {{"count": 1, "product": {A100!r}, "name": "A100", "shm_size": "2Gi"}},
        # the simulated GPU node also carries kwok's own taint
        "kubespawner_override": {{"tolerations": [{{**{KWOK_TAINT!r}, "operator": "Equal"}}]}},
    }},
]
"""


def _gpu_hog(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"nvidia.com/gpu.product": A100},
            "tolerations": [
                {**KWOK_TAINT, "operator": "Equal"},
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            ],
            "containers": [
                {
                    "name": "train",
                    "image": "busybox",
                    "command": ["sleep", "infinity"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "10m"}},
                }
            ],
        },
    }


@pytest.fixture
def gpu_hogs(control_plane: ControlPlane, namespace: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        control_plane.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{name}?gracePeriodSeconds=0")


def _occupy(cp: ControlPlane, namespace: str, hogs: list[str], n: int) -> None:
    for _ in range(n):
        name = f"hog-{len(hogs)}"
        cp.request("POST", f"/api/v1/namespaces/{namespace}/pods", _gpu_hog(name))
        hogs.append(name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pods = [cp.request("GET", f"/api/v1/namespaces/{namespace}/pods/{h}") for h in hogs]
        if all(p["spec"].get("nodeName") == "kwok-gpu-1" for p in pods):
            return
        time.sleep(0.2)
    raise AssertionError("the GPU hogs were not scheduled on kwok-gpu-1")


async def test_menu_shows_free_gpus_and_full_gpu_spawn_fails_fast_and_cleans_up(
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    namespace: str,
    gpu_hogs: list[str],
) -> None:
    hub = hubkit_hub(GPU_CONFIG)
    browser_like = await hub.login("instructor")
    try:
        _occupy(control_plane, namespace, gpu_hogs, 3)
        page = (await browser_like.get("/hub/spawn")).text
        assert "1 of 4 A100 GPUs free." in page
        assert not RADIO_DISABLED.search(page)

        _occupy(control_plane, namespace, gpu_hogs, 1)
        page = (await browser_like.get("/hub/spawn")).text
        assert "All 4 A100 GPUs are in use; try again later." in page
        assert RADIO_DISABLED.search(page), "a profile with no free GPU cannot be picked"

        started = time.monotonic()
        expected = "All 4 A100 GPUs are in use; try again later or pick a CPU profile."
        headers = {"Authorization": f"token {hub.admin_token}"}
        async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=90) as c:
            r = await c.post("/hub/api/users/instructor/server", json={"profile": "a100"})
            assert r.status_code == 202, r.text
            progress = await c.get("/hub/api/users/instructor/server/progress")
        events = [json.loads(line[5:]) for line in progress.text.splitlines() if line.startswith("data:")]
        messages = [e.get("message", "") for e in events]
        assert "Waiting for a GPU: every GPU of this type is in use right now." in messages
        assert not any("FailedScheduling" in m or "Insufficient" in m for m in messages), messages
        assert events[-1]["failed"] is True
        assert events[-1]["message"] == f"Spawn failed: {expected}"
        await hub.wait_for_server("instructor", ready=False, timeout=30)
        assert time.monotonic() - started < 60, "the user hears back long before start_timeout"
        assert control_plane.wait_for_pod_gone(restricted_namespace, "jupyter-instructor", timeout=30)
        deadline = time.monotonic() + 20
        while objects_in(control_plane, restricted_namespace)["configmaps"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert objects_in(control_plane, restricted_namespace) == {"pods": [], "configmaps": []}
        events = control_plane.request("GET", f"/api/v1/namespaces/{restricted_namespace}/events")["items"]
        failed = [e for e in events if e["reason"] == "FailedScheduling"]
        assert failed, "the real scheduler reported the pod unschedulable"
        assert "nvidia.com/gpu" in failed[0]["message"]
    finally:
        await browser_like.aclose()
