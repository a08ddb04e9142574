"""Which seat size a user pod took: its size label, else the smallest size that fits its requests."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .settings import SeatSize

__all__ = ["parse_quantity", "size_for_pod"]

_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_FACTORS = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def parse_quantity(text: str) -> float:
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _FACTORS:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def _requests(pod: Mapping[str, Any]) -> dict[str, float]:
    total: dict[str, float] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, value in merged.items():
            try:
                total[name] = total.get(name, 0.0) + parse_quantity(value)
            except ValueError:
                continue
    return total


def size_for_pod(pod: Mapping[str, Any], sizes: Sequence[SeatSize], size_label: str) -> str | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    named = labels.get(size_label)
    if named and any(s.name == named for s in sizes):
        return str(named)
    wants = _requests(pod)
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    best: tuple[float, str] | None = None
    for size in sizes:
        extended = {k: float(v) for k, v in size.extended_resources.items()}
        wanted_extended = {k for k, v in wants.items() if "/" in k and v > 0}
        if wanted_extended != {k for k, v in extended.items() if v > 0}:
            continue  # a GPU pod takes a GPU seat, a CPU pod a CPU seat
        if any(selector.get(k, v) != v for k, v in size.node_selector.items()):
            continue
        cpu, mem = parse_quantity(size.cpu), parse_quantity(size.memory)
        if wants.get("cpu", 0) <= cpu + 1e-9 and wants.get("memory", 0) <= mem + 1e-9:
            key = (cpu + mem / 2**30, size.name)
            best = key if best is None or key < best else best
    return best[1] if best else None
