"""Pure decisions of the prepuller: which node should hold which image, what is missing, what to pull next."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hubkit.services.image_menu_contract import (
    ImageEntry,
    ImageMenu,
    Placement,
    Toleration,
    normalize_image,
)

__all__ = [
    "KUBELET_MAX_IMAGES",
    "NodeInfo",
    "NodePlan",
    "PullLimits",
    "choose_pulls",
    "eligible",
    "merge_menus",
    "node_from_object",
    "normalize_image",
    "plan_nodes",
    "since",
]

# The kubelet's default nodeStatusMaxImages: Node.status.images lists at most this many (largest first).
KUBELET_MAX_IMAGES = 50


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    resources: frozenset[str]  # allocatable resource names with a positive amount
    images: frozenset[str]  # normalized names (tags and digests) from Node.status.images
    image_list_full: bool  # the kubelet may have left smaller images out
    schedulable: bool
    created: str = ""


def _positive(quantity: Any) -> bool:
    text = str(quantity).strip()
    return bool(text) and text not in {"0", "0m", "0k", "0Ki", "0Mi", "0Gi"}


def node_from_object(node: Mapping[str, Any], max_images: int = KUBELET_MAX_IMAGES) -> NodeInfo:
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    listed = status.get("images") or []
    names: set[str] = set()
    for image in listed:
        for name in image.get("names") or []:
            names.add(normalize_image(str(name)))
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels=dict(meta.get("labels") or {}),
        taints=tuple(spec.get("taints") or ()),
        resources=frozenset(k for k, v in (status.get("allocatable") or {}).items() if _positive(v)),
        images=frozenset(names),
        image_list_full=len(listed) >= max_images,
        schedulable=ready and not spec.get("unschedulable", False),
        created=str(meta.get("creationTimestamp", "")),
    )


def _allows(placement: Placement, node: NodeInfo, extra: Sequence[Toleration]) -> bool:
    if any(node.labels.get(k) != v for k, v in placement.node_selector.items()):
        return False
    if any(r not in node.resources for r in placement.resources):
        return False
    tolerations = (*placement.tolerations, *extra)
    return all(
        any(t.tolerates(taint) for t in tolerations)
        for taint in node.taints
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


def eligible(entry: ImageEntry, node: NodeInfo, extra: Sequence[Toleration] = ()) -> Placement | None:
    """The first placement of the image that allows the node, or None (the image does not belong there)."""
    for placement in entry.placements:
        if _allows(placement, node, extra):
            return placement
    return None


@dataclass
class NodePlan:
    """One node's view: eligible images, which are present, missing or unknown (list full)."""

    node: str
    eligible: dict[str, Placement] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)


def merge_menus(menus: Iterable[ImageMenu]) -> dict[str, ImageEntry]:
    """One entry per normalized image across hubs; placements and profiles are unioned."""
    merged: dict[str, ImageEntry] = {}
    for menu in menus:
        for entry in menu.images:
            key = normalize_image(entry.image)
            old = merged.get(key)
            if old is None:
                merged[key] = entry.model_copy(update={"image": key})
                continue
            placements = old.placements + tuple(p for p in entry.placements if p not in old.placements)
            profiles = old.profiles + tuple(p for p in entry.profiles if p not in old.profiles)
            merged[key] = old.model_copy(update={"placements": placements, "profiles": profiles})
    return merged


def plan_nodes(
    images: Mapping[str, ImageEntry],
    nodes: Iterable[NodeInfo],
    extra: Sequence[Toleration] = (),
    confirmed: Mapping[str, set[str]] | None = None,
) -> dict[str, NodePlan]:
    """Per node, what it should hold and what it lacks.

    An image absent from a *full* image list is not known to be missing: the kubelet lists only the
    largest ``KUBELET_MAX_IMAGES``. Such an image counts as present when a pull pod already succeeded
    for it on that node (``confirmed``), otherwise as ``unknown`` — and unknown images are pulled too,
    since a pull of a present image finishes in seconds.
    """
    confirmed = confirmed or {}
    plans: dict[str, NodePlan] = {}
    for node in nodes:
        plan = NodePlan(node.name)
        for image, entry in images.items():
            placement = eligible(entry, node, extra)
            if placement is None:
                continue
            plan.eligible[image] = placement
            if image in node.images:
                plan.present.add(image)
            elif node.image_list_full:
                if image in confirmed.get(node.name, set()):
                    plan.present.add(image)
                else:
                    plan.unknown.add(image)
            else:
                plan.missing.add(image)
        plans[node.name] = plan
    return plans


@dataclass(frozen=True)
class PullLimits:
    per_node: int = 1
    per_cluster: int = 10


def choose_pulls(
    wanted: Mapping[str, Sequence[str]],
    in_flight: Mapping[str, set[str]],
    limits: PullLimits,
    blocked: Mapping[str, set[str]] | None = None,
) -> list[tuple[str, str]]:
    """The (node, image) pulls to start now, within per-node and cluster-wide limits.

    Nodes are served round-robin (one pull per node per round, newest lack first in ``wanted``'s order), so
    a fresh node does not wait behind another node's long queue. ``blocked`` pulls (in back-off) are skipped.
    """
    blocked = blocked or {}
    total = sum(len(v) for v in in_flight.values())
    room = {n: limits.per_node - len(in_flight.get(n, set())) for n in wanted}
    queues = {
        n: [i for i in images if i not in in_flight.get(n, set()) and i not in blocked.get(n, set())]
        for n, images in wanted.items()
    }
    chosen: list[tuple[str, str]] = []
    progress = True
    while progress and total < limits.per_cluster:
        progress = False
        for node in sorted(queues):
            if total >= limits.per_cluster:
                break
            if room[node] > 0 and queues[node]:
                chosen.append((node, queues[node].pop(0)))
                room[node] -= 1
                total += 1
                progress = True
    return chosen


def since(first_seen: dict[tuple[str, str], datetime], plans: Mapping[str, NodePlan], now: datetime) -> None:
    """Keep ``first_seen[(node, image)]`` for lacking pairs: set when first seen, dropped once present."""
    lacking = {(n, i) for n, p in plans.items() for i in p.missing | p.unknown}
    for key in list(first_seen):
        if key not in lacking:
            del first_seen[key]
    for key in lacking:
        first_seen.setdefault(key, now)
