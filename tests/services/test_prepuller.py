"""The prepuller against the real control plane: kwok nodes with image lists, real watches and pods."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubkit.services.image_menu_contract import configmap_for, images_not_everywhere, menu_from_profile_list
from hubkit.services.prepuller.builders import pull_pod_name
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.nodes import KWOK_TAINT, NodeSpec, kwok_node_manifest
from hubkit_testing.service_processes import start_prepuller
from hubkit_testing.waiting import wait_for

PATCH = "application/merge-patch+json"
CPU_A = "registry.example.org/course/base:1"
CPU_B = "registry.example.org/course/extra:2"
GPU_G = "registry.example.org/course/torch:3"


def add_node(cp: ControlPlane, spec: NodeSpec, images: list[str]) -> None:
    """Register a kwok node that reports ``images`` in its status from the start, as a kubelet does."""
    manifest = kwok_node_manifest(spec)
    manifest["status"]["images"] = [{"names": [i], "sizeBytes": 10**9} for i in images]
    cp.request("POST", "/api/v1/nodes", manifest)
    cp.wait_for_nodes_ready([spec.name])


def set_node_images(cp: ControlPlane, name: str, images: list[str]) -> None:
    body = {"status": {"images": [{"names": [i], "sizeBytes": 10**9} for i in images]}}
    cp.request("PATCH", f"/api/v1/nodes/{name}/status", body, content_type=PATCH)


def finish_pull(cp: ControlPlane, namespace: str, name: str) -> None:
    """What the kubelet reports once the image is there and the pull pod's command exited 0."""
    body = {
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "pull",
                    "image": "x",
                    "imageID": "x",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                }
            ],
        }
    }
    cp.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", body, content_type=PATCH)


@pytest.fixture
def prepuller_env(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A hub namespace with a published menu, two labelled kwok nodes, and the prepuller's settings."""
    tag = secrets.token_hex(3)
    hub_ns = control_plane.create_namespace(f"pp-hub-{tag}")
    other_ns = control_plane.create_namespace(f"pp-hub2-{tag}")
    label = {"hubkit.dev/pp-test": tag}
    profiles = [
        {
            "display_name": "CPU",
            "slug": "cpu",
            "kubespawner_override": {"image": CPU_A},
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "a": {"display_name": "A", "kubespawner_override": {}},
                        "b": {"display_name": "B", "kubespawner_override": {"image": CPU_B}},
                    },
                }
            },
        },
        {
            "display_name": "GPU",
            "slug": "gpu",
            "kubespawner_override": {
                "image": GPU_G,
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "extra_resource_limits": {"nvidia.com/gpu": "1"},
            },
        },
    ]
    cm = configmap_for(menu_from_profile_list(profiles, []), "physics", namespace=hub_ns)
    control_plane.request("POST", f"/api/v1/namespaces/{hub_ns}/configmaps", cm)
    # A second hub on the cluster shares image A and adds nothing else.
    other = configmap_for(menu_from_profile_list([], [], default_image=CPU_A), "biology", namespace=other_ns)
    control_plane.request("POST", f"/api/v1/namespaces/{other_ns}/configmaps", other)
    cpu, gpu = f"pp-cpu-{tag}", f"pp-gpu-{tag}"
    add_node(control_plane, NodeSpec(cpu, labels=label), [CPU_A])
    gpu_taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    add_node(
        control_plane, NodeSpec(gpu, cpu="8", gpus=2, gpu_product="T4", labels=label, taints=[gpu_taint]), []
    )
    nodes = [cpu, gpu]
    settings = {
        "namespace": namespace,
        "kubeconfig": str(control_plane.admin_kubeconfig),
        "menu_namespaces": [hub_ns, other_ns],
        "node_selector": label,
        # Only the test's configuration lets pull pods onto simulated nodes.
        "tolerations": [{"key": KWOK_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
        "resync_seconds": 5,
    }
    try:
        yield {"tag": tag, "hub_ns": hub_ns, "label": label, "nodes": nodes, "settings": settings}
    finally:
        for n in nodes:
            control_plane.request("DELETE", f"/api/v1/nodes/{n}")
        control_plane.delete_namespace(hub_ns)
        control_plane.delete_namespace(other_ns)


def pull_pods(cp: ControlPlane, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    pods = cp.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    return {
        (p["spec"]["nodeName"], p["metadata"]["annotations"]["hubkit.dev/prepull-image"]): p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
    }


def test_nodes_get_pull_pods_only_for_what_they_lack_and_status_converges(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, prepuller_env: dict[str, Any]
) -> None:
    cpu, gpu = prepuller_env["nodes"]
    a, b, g = (f"{i}" for i in (CPU_A, CPU_B, GPU_G))
    running = start_prepuller(tmp_path, prepuller_env["settings"])
    try:
        pods = wait_for(lambda: len(p := pull_pods(control_plane, namespace)) >= 2 and p, 30, "two pull pods")
        time.sleep(1.5)  # a few more reconciles: nothing else may appear
        pods = pull_pods(control_plane, namespace)
        assert set(pods) == {(cpu, b), (gpu, g)}, "the CPU node lacks only B; the GPU node only the GPU image"
        pod = pods[(gpu, g)]
        assert pod["spec"]["priorityClassName"] == "hubkit-prepull"
        assert pod["metadata"]["name"] == pull_pod_name(gpu, g)
        keys = {t["key"] for t in pod["spec"]["tolerations"]}
        assert keys >= {"kwok.x-k8s.io/node", "nvidia.com/gpu"}
        assert (
            "resources" not in pod["spec"]["containers"][0] or not pod["spec"]["containers"][0]["resources"]
        )
        pc = control_plane.request("GET", "/apis/scheduling.k8s.io/v1/priorityclasses/hubkit-prepull")
        assert pc["value"] == -20

        status = running.status()
        by_image = {i["image"]: i for i in status["images"]}
        assert by_image[b]["missing"] == [cpu]
        assert by_image[b]["present"] == []
        assert by_image[a]["present"] == [cpu]
        assert by_image[a]["on_every_eligible_node"]
        assert images_not_everywhere(status) == {b, g}
        assert by_image[g]["missing"] == [gpu]
        assert cpu not in by_image[g]["missing"] + by_image[g]["present"]
        assert by_image[g]["hubs"] == ["physics"]
        assert by_image[a]["hubs"] == ["biology", "physics"]
        node_status = {n["node"]: n for n in status["nodes"]}
        assert set(node_status[cpu]["missing"]) == {b}
        assert node_status[cpu]["pulling"] == [b]

        # A new node that already holds B gets a pull pod for A only.
        new = f"pp-new-{prepuller_env['tag']}"
        prepuller_env["nodes"].append(new)
        add_node(control_plane, NodeSpec(new, labels=prepuller_env["label"]), [CPU_B])
        wait_for(
            lambda: (new, a) in pull_pods(control_plane, namespace), 30, "pull pod for A on the new node"
        )
        time.sleep(1.5)
        assert {k for k in pull_pods(control_plane, namespace) if k[0] == new} == {(new, a)}

        # The pull finishes: the node lists B and the pod completes; status converges, the pod goes away.
        set_node_images(control_plane, cpu, [CPU_A, CPU_B])
        finish_pull(control_plane, namespace, pods[(cpu, b)]["metadata"]["name"])

        def converged() -> bool:
            s = {i["image"]: i for i in running.status()["images"]}
            return cpu in s[b]["present"] and not s[b]["missing"]

        wait_for(converged, 30, "status shows B on the CPU node")
        assert control_plane.wait_for_pod_gone(namespace, pods[(cpu, b)]["metadata"]["name"], 30)
        metrics = running.get("/metrics")[1].decode()
        assert f'hubkit_prepuller_image_nodes{{image="{b}",state="present"}} 2.0' in metrics
        assert 'hubkit_prepuller_pulls_total{result="succeeded"} 1.0' in metrics
        assert f'hubkit_prepuller_node_missing_images{{node="{cpu}"}} 0.0' in metrics
    finally:
        assert running.stop_cleanly() == 0


def test_full_image_list_and_a_broken_menu(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, prepuller_env: dict[str, Any]
) -> None:
    """A node listing 50 images gets A pulled once (then trusted); another hub's broken menu is ignored."""
    hub_ns = prepuller_env["hub_ns"]
    broken = {
        "metadata": {"name": "hubkit-image-menu-broken", "labels": {"hubkit.dev/image-menu": "true"}},
        "data": {"menu.json": '{"images": [{"image": "evil", "placements": [], "run": "rm -rf /"}]}'},
    }
    control_plane.request("POST", f"/api/v1/namespaces/{hub_ns}/configmaps", broken)
    huge = menu_from_profile_list([], [f"registry.example.org/spam/i{n}:1" for n in range(101)])
    control_plane.request(
        "POST",
        f"/api/v1/namespaces/{hub_ns}/configmaps",
        {
            **configmap_for(huge, "spam"),
            "metadata": {**configmap_for(huge, "spam")["metadata"], "name": "spam"},
        },
    )
    full = f"pp-full-{prepuller_env['tag']}"
    prepuller_env["nodes"].append(full)
    filler = [f"registry.example.org/big/layer{i}:1" for i in range(50)]
    add_node(control_plane, NodeSpec(full, labels=prepuller_env["label"]), [CPU_B, *filler[:49]])
    bare = f"pp-bare-{prepuller_env['tag']}"
    prepuller_env["nodes"].append(bare)
    add_node(control_plane, NodeSpec(bare, labels=prepuller_env["label"]), [])
    running = start_prepuller(tmp_path, prepuller_env["settings"])
    try:
        pod = wait_for(lambda: pull_pods(control_plane, namespace).get((full, CPU_A)), 30, "pull of A")
        # The bare node lacks A and B, but pulls one image at a time (per_node_concurrency 1).
        on_bare = wait_for(
            lambda: [k for k in pull_pods(control_plane, namespace) if k[0] == bare],
            30,
            "a pull on the bare node",
        )
        time.sleep(1.5)  # a second concurrent pull would have appeared by now
        on_bare = [k for k in pull_pods(control_plane, namespace) if k[0] == bare]
        assert len(on_bare) == 1
        finish_pull(
            control_plane, namespace, pull_pods(control_plane, namespace)[on_bare[0]]["metadata"]["name"]
        )
        second = wait_for(
            lambda: [k for k in pull_pods(control_plane, namespace) if k[0] == bare and k != on_bare[0]],
            30,
            "the second pull on the bare node",
        )
        assert {on_bare[0][1], second[0][1]} == {CPU_A, CPU_B}
        status = running.status()
        node = next(n for n in status["nodes"] if n["node"] == full)
        assert node["image_list_full"]
        assert CPU_A in node["unknown"]
        assert not node["missing"]
        assert sorted(status["menu_errors"]) == [f"{hub_ns}/hubkit-image-menu-broken", f"{hub_ns}/spam"]
        assert "more than max_images_per_menu (100)" in status["menu_errors"][f"{hub_ns}/spam"]
        assert "is not a valid image menu" in status["menu_errors"][f"{hub_ns}/hubkit-image-menu-broken"]
        assert not any("evil" in i["image"] or "spam" in i["image"] for i in status["images"])
        finish_pull(control_plane, namespace, pod["metadata"]["name"])

        def trusted() -> bool:
            n = next(n for n in running.status()["nodes"] if n["node"] == full)
            return CPU_A in n["present"] and not n["unknown"]

        wait_for(trusted, 30, "A trusted on the full node")
        assert control_plane.wait_for_pod_gone(namespace, pod["metadata"]["name"], 30)
        time.sleep(1.5)
        assert (full, CPU_A) not in pull_pods(control_plane, namespace), (
            "a confirmed image is not pulled again"
        )
    finally:
        running.stop_cleanly()
    assert "ignoring the image menu" in running.process.log_path.read_text()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"namespace": "x", "concurency": 3}, "concurency: Extra inputs are not permitted"),
        ({"namespace": "x", "priority_value": 5}, "priority_value"),
        ({}, "namespace: Field required"),
    ],
)
def test_bad_settings_exit_2_with_one_sentence(
    control_plane: ControlPlane, tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(settings))
    before = control_plane.request("GET", "/apis/scheduling.k8s.io/v1/priorityclasses")["items"]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("hubkit-prepuller")), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    after = control_plane.request("GET", "/apis/scheduling.k8s.io/v1/priorityclasses")["items"]
    assert len(after) == len(before)
