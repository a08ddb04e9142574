"""The warm-seat broker on the real control plane, with a second real kube-scheduler packing kwok nodes."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _warmseat_fixtures import packing_scheduler, wait_for
from prometheus_client import generate_latest

from hubkit.services.common.kube_runtime import kube_client
from hubkit.services.warmseats import WarmSeatBroker, WarmSeatsSettings
from hubkit.services.warmseats.builders import size_of_pod_name
from hubkit.services.warmseats.metrics import WarmSeatsMetrics
from hubkit.services.warmseats.storage import WarmSeatsStore
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.nodes import KWOK_TAINT, NodeSpec

KWOK_TOL = {"key": KWOK_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
GPU_TOL = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def sizes(tag: str, small: int = 4, gpu: int = 2) -> list[dict[str, Any]]:
    return [
        {
            "name": "small",
            "cpu": "1",
            "memory": "4Gi",
            "node_selector": {"ws-pool": f"cpu-{tag}"},
            "tolerations": [KWOK_TOL],
            "profiles": ["python"],
            "baseline": small,
        },
        {
            "name": "gpu",
            "cpu": "4",
            "memory": "16Gi",
            "extended_resources": {"nvidia.com/gpu": 1},
            "node_selector": {"ws-pool": f"gpu-{tag}"},
            "tolerations": [KWOK_TOL, GPU_TOL],
            "profiles": ["pytorch"],
            "baseline": gpu,
        },
    ]


class BrokerRun:
    def __init__(self, broker: WarmSeatBroker, tasks: list[asyncio.Task[None]]) -> None:
        self.broker, self.tasks = broker, tasks


async def start_broker(settings: WarmSeatsSettings, loop_too: bool) -> BrokerRun:
    api = await kube_client(settings.kubeconfig)
    store = WarmSeatsStore(api, settings, lambda: None)
    broker = WarmSeatBroker(settings, store, WarmSeatsMetrics())
    if loop_too:
        tasks = [asyncio.create_task(broker.run())]
    else:
        await store.ensure_priority_class()
        tasks = [asyncio.create_task(c.run()) for c in store.caches]
        await store.synced()
    return BrokerRun(broker, tasks)


async def stop_broker(run: BrokerRun) -> None:
    for t in run.tasks:
        t.cancel()
    await asyncio.gather(*run.tasks, return_exceptions=True)
    await run.broker.store.api.close()


def user_pod(name: str, hub: str, scheduler: str, tag: str, gpu: bool) -> dict[str, Any]:
    """What a hub's spawner creates: a single-user pod naming the shared scheduler, priority 0."""
    resources = (
        {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"} if gpu else {"cpu": "1", "memory": "4Gi"}
    )
    return {
        "metadata": {"name": name, "labels": {"component": "singleuser-server", "hubkit.dev/hub": hub}},
        "spec": {
            "schedulerName": scheduler,
            "nodeSelector": {"ws-pool": f"{'gpu' if gpu else 'cpu'}-{tag}"},
            "tolerations": [KWOK_TOL, GPU_TOL] if gpu else [KWOK_TOL],
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyterhub/singleuser:5",
                    "resources": {"requests": resources, "limits": resources},
                }
            ],
        },
    }


@pytest.fixture
async def cluster(control_plane: ControlPlane, namespace: str) -> AsyncIterator[dict[str, Any]]:
    """Two kwok nodes (a 4-CPU pool and a 2-GPU pool) and two hub namespaces, removed afterwards."""
    tag = secrets.token_hex(3)
    cpu, gpu = f"ws-cpu-{tag}", f"ws-gpu-{tag}"
    control_plane.add_kwok_node(NodeSpec(cpu, labels={"ws-pool": f"cpu-{tag}"}))
    control_plane.add_kwok_node(
        NodeSpec(
            gpu,
            cpu="8",
            memory="32Gi",
            gpus=2,
            gpu_product="T4",
            labels={"ws-pool": f"gpu-{tag}"},
            taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}],
        )
    )
    hubs = [control_plane.create_namespace(f"ws-hub-{h}-{tag}") for h in ("a", "b")]
    try:
        yield {"tag": tag, "nodes": (cpu, gpu), "hubs": hubs}
    finally:
        for deployment in ("warmseat-small", "warmseat-gpu"):
            with contextlib.suppress(OSError):
                control_plane.request(
                    "DELETE", f"/apis/apps/v1/namespaces/{namespace}/deployments/{deployment}"
                )
        for ns in hubs:
            control_plane.delete_namespace(ns)
        for node in (cpu, gpu):
            control_plane.request("DELETE", f"/api/v1/nodes/{node}")


def pods_on(cp: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cp.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
        if not p["metadata"].get("deletionTimestamp")
    ]


async def test_user_pods_from_two_hubs_preempt_the_right_sized_placeholders(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, cluster: dict[str, Any]
) -> None:
    tag = cluster["tag"]
    cpu_node, gpu_node = cluster["nodes"]
    hub_a, hub_b = cluster["hubs"]
    scheduler = f"hubkit-packing-{tag}"
    settings = WarmSeatsSettings.model_validate(
        {
            "namespace": namespace,
            "kubeconfig": str(control_plane.admin_kubeconfig),
            "scheduler_name": scheduler,
            "sizes": sizes(tag),
            "reconcile_seconds": 2,
        }
    )
    with packing_scheduler(control_plane, tmp_path, scheduler):
        run = await start_broker(settings, loop_too=True)
        try:
            # The nodes fill up with placeholders: 4 x 1 CPU on the CPU node, 2 x 1 GPU on the GPU node.
            await asyncio.to_thread(
                wait_for,
                lambda: (
                    run.broker.placeholder_states()
                    == {"small": {"running": 4, "pending": 0}, "gpu": {"running": 2, "pending": 0}}
                ),
                60,
                "placeholders running",
            )
            placed = {p["spec"]["nodeName"] for p in pods_on(control_plane, namespace)}
            assert placed == {cpu_node, gpu_node}
            pc = control_plane.request("GET", "/apis/scheduling.k8s.io/v1/priorityclasses/hubkit-warmseat")
            assert pc["value"] == -5

            users = [
                (hub_a, "alice", False),
                (hub_a, "bob", False),
                (hub_b, "carol", True),
                (hub_b, "dave", False),
            ]
            for ns, name, gpu in users:  # all at once, from two hubs
                control_plane.request(
                    "POST", f"/api/v1/namespaces/{ns}/pods", user_pod(name, ns, scheduler, tag, gpu)
                )
            for ns, name, gpu in users:
                pod = await asyncio.to_thread(control_plane.wait_for_pod_phase, ns, name, {"Running"}, 60)
                assert pod["spec"]["nodeName"] == (gpu_node if gpu else cpu_node)

            # The displaced placeholders came back Pending: no room left in either pool.
            await asyncio.to_thread(
                wait_for,
                lambda: (
                    run.broker.placeholder_states()
                    == {"small": {"running": 1, "pending": 3}, "gpu": {"running": 1, "pending": 1}}
                ),
                60,
                "displaced placeholders pending",
            )
            pending = [p for p in pods_on(control_plane, namespace) if not p["spec"].get("nodeName")]
            assert len(pending) == 4
            assert all(p["status"]["phase"] == "Pending" for p in pending)

            # Ground truth is the scheduler's own record: one Preempted event per victim, naming the
            # preempting pod. The broker must count exactly that, one seat per user pod, by hub and size.
            def recorded() -> dict[tuple[str, str], int]:
                path = f"/api/v1/namespaces/{namespace}/events?fieldSelector=reason%3DPreempted"
                events = control_plane.request("GET", path)["items"]
                takers: set[str] = set()
                tally: dict[tuple[str, str], int] = {}
                for event in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"]):
                    related = event.get("related") or {}
                    size = size_of_pod_name(event["involvedObject"]["name"])
                    if not related or size is None or related["uid"] in takers:
                        continue
                    takers.add(related["uid"])
                    key = (related["namespace"], size)
                    tally[key] = tally.get(key, 0) + 1
                return tally

            await asyncio.to_thread(
                wait_for,
                lambda: recorded() and run.broker.consumed == recorded(),
                60,
                "the broker's accounting to match the scheduler's preemptions",
            )
            consumed = run.broker.consumed
            expected = {(hub_a, "small"): 2, (hub_b, "small"): 1, (hub_b, "gpu"): 1}
            assert set(consumed) <= set(expected), consumed
            assert all(consumed[k] <= expected[k] for k in consumed), consumed
            assert consumed.get((hub_b, "gpu")) == 1, "carol's GPU pod took the GPU seat"
            metrics = generate_latest(run.broker.metrics.registry).decode()
            for (hub, size), seats in consumed.items():
                assert (
                    f'hubkit_warmseats_consumed_total{{hub="{hub}",size="{size}"}} {float(seats)}' in metrics
                )
            assert 'hubkit_warmseats_placeholders{size="small",state="pending"} 3.0' in metrics
        finally:
            await stop_broker(run)


async def test_broker_scales_up_ahead_of_a_calendar_event_and_down_after_it(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, cluster: dict[str, Any]
) -> None:
    tag = cluster["tag"]
    start = datetime(2026, 9, 14, 9, 0, tzinfo=UTC)  # a Monday, the second week of term
    calendar = tmp_path / "classes.ics"
    calendar.write_text(
        "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//test//EN",
                "BEGIN:VEVENT",
                "UID:stat101@example.edu",
                "SUMMARY:STAT 101 lab",
                "DTSTART:20260907T090000Z",
                "DTEND:20260907T101500Z",
                "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=14",
                "X-HUBKIT-STUDENTS:6",
                "X-HUBKIT-PROFILES:python=0.5,pytorch=0.5",
                "X-HUBKIT-LEAD:PT20M",
                "END:VEVENT",
                "BEGIN:VEVENT",
                "UID:broken@example.edu",
                "SUMMARY:Broken entry",
                "DTSTART:20260914T090000Z",
                "DTEND:20260914T100000Z",
                "X-HUBKIT-STUDENTS:lots",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
    )
    settings = WarmSeatsSettings.model_validate(
        {
            "namespace": namespace,
            "kubeconfig": str(control_plane.admin_kubeconfig),
            "sizes": sizes(tag, small=1, gpu=0),
            "calendar_path": str(calendar),
        }
    )
    run = await start_broker(settings, loop_too=False)
    broker = run.broker

    def replicas() -> dict[str, int]:
        items = control_plane.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]
        return {d["metadata"]["labels"]["hubkit.dev/warmseat-size"]: d["spec"]["replicas"] for d in items}

    def placeholder_counts() -> dict[str, int]:
        counts = {"small": 0, "gpu": 0}
        for p in pods_on(control_plane, namespace):
            counts[p["metadata"]["labels"]["hubkit.dev/warmseat-size"]] += 1
        return counts

    try:
        await broker.reconcile(start - timedelta(minutes=45))
        assert replicas() == {"small": 1, "gpu": 0}
        await asyncio.to_thread(
            wait_for, lambda: placeholder_counts() == {"small": 1, "gpu": 0}, 60, "baseline"
        )

        await broker.reconcile(start - timedelta(minutes=19))  # inside the 20-minute lead time
        assert replicas() == {"small": 3, "gpu": 3}
        await asyncio.to_thread(
            wait_for, lambda: placeholder_counts() == {"small": 3, "gpu": 3}, 60, "scale-up"
        )
        status = broker.status()
        assert {s["size"]: s["terms"]["scheduled"] for s in status["sizes"]} == {"small": 3, "gpu": 3}
        assert status["sizes"][0]["events"] == ["STAT 101 lab"]
        assert len(status["calendar_problems"]) == 1
        assert "Broken entry" in status["calendar_problems"][0]

        await broker.reconcile(start + timedelta(minutes=76))  # the lab ended at 10:15
        assert replicas() == {"small": 1, "gpu": 0}
        await asyncio.to_thread(
            wait_for, lambda: placeholder_counts() == {"small": 1, "gpu": 0}, 60, "scale-down"
        )
        metrics = generate_latest(broker.metrics.registry).decode()
        assert 'hubkit_warmseats_planned{size="gpu"} 0.0' in metrics
        assert "hubkit_warmseats_calendar_problems 1.0" in metrics
    finally:
        await stop_broker(run)


async def test_the_shared_scheduler_packs_placeholders_onto_the_fullest_node(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, cluster: dict[str, Any]
) -> None:
    """MostAllocated: three 1-CPU seats share one 4-CPU node instead of spreading over two."""
    tag = cluster["tag"]
    second = f"ws-cpu2-{tag}"
    control_plane.add_kwok_node(NodeSpec(second, labels={"ws-pool": f"cpu-{tag}"}))
    scheduler = f"hubkit-packing-{tag}"
    settings = WarmSeatsSettings.model_validate(
        {
            "namespace": namespace,
            "kubeconfig": str(control_plane.admin_kubeconfig),
            "scheduler_name": scheduler,
            "sizes": sizes(tag, small=3, gpu=0),
        }
    )
    try:
        with packing_scheduler(control_plane, tmp_path, scheduler):
            run = await start_broker(settings, loop_too=False)
            try:
                await run.broker.reconcile()
                await asyncio.to_thread(
                    wait_for,
                    lambda: run.broker.placeholder_states()["small"] == {"running": 3, "pending": 0},
                    60,
                    "three placeholders running",
                )
                nodes = [p["spec"]["nodeName"] for p in pods_on(control_plane, namespace)]
                assert len(nodes) == 3
                assert len(set(nodes)) == 1, f"placeholders spread over {sorted(set(nodes))}"
            finally:
                await stop_broker(run)
    finally:
        control_plane.request("DELETE", f"/api/v1/nodes/{second}")
