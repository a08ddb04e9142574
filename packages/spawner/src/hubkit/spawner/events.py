"""Kubernetes events of a spawning pod, told in plain words for the progress bar (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_IMAGE = re.compile(r'[Ii]mage "([^"]+)"')
_SIZE = re.compile(r"[Ii]mage size: (\d+) bytes")
_TOOK = re.compile(r" in ([0-9.]+m?s)")


def _size(num_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} bytes"


def _image(message: str) -> str:
    m = _IMAGE.search(message)
    return m.group(1) if m else "the image"


def describe_event(event: Mapping[str, Any], image_sizes: Mapping[str, int] | None = None) -> str | None:
    """One plain sentence for a pod event, or None for events people need not see."""
    reason = str(event.get("reason") or "")
    message = str(event.get("message") or "")
    if reason == "FailedScheduling":
        if "nvidia.com/" in message and "Insufficient" in message:
            return "Waiting for a GPU: every GPU of this type is in use right now."
        if "Insufficient" in message or "Too many pods" in message:
            return "Waiting for a seat: the cluster is full right now; your server starts when room frees up."
        if "persistentvolumeclaim" in message.lower():
            return "Waiting for your storage to be ready."
        return "Waiting for a machine that can run your server."
    if reason == "TriggeredScaleUp":
        return "Waiting for a new node: the cluster is adding a machine (this can take a few minutes)."
    if reason == "NotTriggerScaleUp":
        return "Waiting for a seat: no new machine can be added for this server right now."
    if reason == "Scheduled":
        return "A machine was found for your server."
    if reason == "Pulling":
        image = _image(message)
        size = (image_sizes or {}).get(image)
        return f"Pulling the image {image} ({_size(size)})." if size else f"Pulling the image {image}."
    if reason == "Pulled":
        image = _image(message)
        size_match, took = _SIZE.search(message), _TOOK.search(message)
        parts = [
            _size(int(size_match.group(1))) if size_match else "",
            f"took {took.group(1)}" if took else "",
        ]
        detail = ", ".join(part for part in parts if part)
        if "already present" in message:
            return f"The image {image} is already on the machine."
        return f"Pulled the image {image}" + (f" ({detail})." if detail else ".")
    if reason in ("Created", "Started"):
        return "Starting your server."
    if reason in ("Failed", "BackOff", "ErrImagePull", "ImagePullBackOff"):
        return f"Your server could not start: {message}"
    if reason == "FailedMount":
        return "Waiting for your files to be mounted."
    return None


def image_sizes(nodes: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Image name → size in bytes, from the nodes' ``status.images`` (what the cluster has seen pulled)."""
    sizes: dict[str, int] = {}
    for node in nodes:
        for image in (node.get("status") or {}).get("images") or []:
            for name in image.get("names") or []:
                if image.get("sizeBytes"):
                    sizes[name] = int(image["sizeBytes"])
    return sizes
