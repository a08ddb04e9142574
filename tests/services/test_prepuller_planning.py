"""The prepuller's pure decisions: image names, eligibility, what is missing, what to pull next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hubkit.services.image_menu_contract import ImageEntry, ImageMenu, Placement, Toleration
from hubkit.services.prepuller.outcomes import PullOutcome, pull_outcome
from hubkit.services.prepuller.planning import (
    KUBELET_MAX_IMAGES,
    PullLimits,
    choose_pulls,
    merge_menus,
    node_from_object,
    normalize_image,
    plan_nodes,
)

KWOK = Toleration(key="kwok.x-k8s.io/node", operator="Exists")
GPU = Placement(
    tolerations=(Toleration(key="nvidia.com/gpu", operator="Exists"),), resources=("nvidia.com/gpu",)
)


def node(name: str, images: list[str], gpu: bool = False, count: int | None = None) -> dict[str, Any]:
    listed = [{"names": [i], "sizeBytes": 1} for i in images]
    if count is not None:
        listed += [{"names": [f"filler/{n}:1"], "sizeBytes": 1} for n in range(count - len(listed))]
    taints = [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]
    allocatable = {"cpu": "4", "pods": "110"}
    if gpu:
        taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
        allocatable["nvidia.com/gpu"] = "4"
    return {
        "metadata": {"name": name, "labels": {"pool": "gpu" if gpu else "cpu"}},
        "spec": {"taints": taints},
        "status": {
            "images": listed,
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def test_image_names_are_normalized_like_the_runtime_reports_them() -> None:
    assert normalize_image("busybox") == "docker.io/library/busybox:latest"
    assert normalize_image("jupyter/scipy-notebook:x") == "docker.io/jupyter/scipy-notebook:x"
    assert normalize_image("localhost:5000/a/b") == "localhost:5000/a/b:latest"
    digest = "@sha256:" + "a" * 64
    assert normalize_image("quay.io/a/b" + digest) == "quay.io/a/b" + digest
    assert normalize_image("index.docker.io/library/debian:12") == "docker.io/library/debian:12"


def test_gpu_image_is_planned_only_for_gpu_nodes_and_cpu_images_stay_off_gpu_nodes() -> None:
    menu = ImageMenu(
        images=(
            ImageEntry(image="cpu:1", placements=(Placement(),)),
            ImageEntry(image="gpu:1", placements=(GPU,)),
        )
    )
    images = merge_menus([menu])
    nodes = [node_from_object(node("c", ["docker.io/library/cpu:1"])), node_from_object(node("g", [], True))]
    plans = plan_nodes(images, nodes, [KWOK])
    assert plans["c"].present == {"docker.io/library/cpu:1"}
    assert plans["c"].missing == set()
    assert plans["g"].missing == {"docker.io/library/gpu:1"}
    # Without the kwok toleration configured, no kwok node is eligible for anything.
    assert all(not p.eligible for p in plan_nodes(images, nodes, []).values())


def test_a_full_image_list_makes_absent_images_unknown_until_a_pull_confirms_them() -> None:
    images = merge_menus([ImageMenu(images=(ImageEntry(image="small:1", placements=(Placement(),)),))])
    full = node_from_object(node("f", [], count=KUBELET_MAX_IMAGES))
    assert full.image_list_full
    plan = plan_nodes(images, [full], [KWOK])["f"]
    assert plan.unknown == {"docker.io/library/small:1"}
    assert not plan.missing
    confirmed = plan_nodes(images, [full], [KWOK], {"f": {"docker.io/library/small:1"}})["f"]
    assert confirmed.present == {"docker.io/library/small:1"}


def test_menus_of_several_hubs_merge_placements_per_image() -> None:
    a = ImageMenu(images=(ImageEntry(image="busybox", placements=(Placement(node_selector={"a": "1"}),)),))
    b = ImageMenu(images=(ImageEntry(image="docker.io/library/busybox:latest", placements=(GPU,)),))
    merged = merge_menus([a, b])
    assert list(merged) == ["docker.io/library/busybox:latest"]
    assert len(merged["docker.io/library/busybox:latest"].placements) == 2


@given(
    wanted=st.dictionaries(
        st.sampled_from(["n1", "n2", "n3", "n4"]),
        st.lists(st.sampled_from("abcdef"), unique=True),
        max_size=4,
    ),
    busy=st.dictionaries(st.sampled_from(["n1", "n2", "n3"]), st.sets(st.sampled_from("xy"), max_size=2)),
    per_node=st.integers(1, 3),
    per_cluster=st.integers(1, 8),
)
def test_pull_choice_respects_both_limits_and_never_repeats(
    wanted: dict[str, list[str]], busy: dict[str, set[str]], per_node: int, per_cluster: int
) -> None:
    chosen = choose_pulls(wanted, busy, PullLimits(per_node, per_cluster))
    assert len(set(chosen)) == len(chosen)
    in_flight = sum(len(v) for v in busy.values())
    assert in_flight + len(chosen) <= max(per_cluster, in_flight)
    for n in wanted:
        mine = [i for m, i in chosen if m == n]
        assert len(busy.get(n, set())) + len(mine) <= max(per_node, len(busy.get(n, set())))
        assert set(mine) <= set(wanted[n])
    # Work-conserving: if nothing was chosen, every limit or queue is exhausted.
    if not chosen:
        assert in_flight >= per_cluster or all(
            not wanted[n] or len(busy.get(n, set())) >= per_node for n in wanted
        )


def test_pull_outcomes_from_pod_status() -> None:
    now = datetime(2026, 9, 14, 9, 0, tzinfo=UTC)

    def pod(
        phase: str, state: dict[str, Any] | None = None, created: str = "2026-09-14T08:59:00Z"
    ) -> dict[str, Any]:
        statuses = [{"name": "pull", "state": state}] if state else []
        return {
            "metadata": {"creationTimestamp": created},
            "status": {"phase": phase, "containerStatuses": statuses},
        }

    assert pull_outcome(pod("Succeeded"), now, 900)[0] is PullOutcome.PULLED
    # The image arrived but has no /bin/true: the container ran, so the image is there.
    ran = {"terminated": {"exitCode": 127, "reason": "StartError"}}
    assert pull_outcome(pod("Failed", ran), now, 900)[0] is PullOutcome.PULLED
    missing = {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}
    outcome, reason = pull_outcome(pod("Pending", missing), now, 900)
    assert outcome is PullOutcome.FAILED
    assert reason == "ErrImagePull: manifest unknown"
    assert pull_outcome(pod("Pending"), now, 900)[0] is PullOutcome.PULLING
    stuck = pod("Pending", created="2026-09-14T08:00:00Z")
    assert pull_outcome(stuck, now, 900) == (PullOutcome.FAILED, "no result after 900 s")
    assert pull_outcome(pod("Failed"), now, 900)[0] is PullOutcome.FAILED
