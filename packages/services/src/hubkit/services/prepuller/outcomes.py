"""Pure reading of a pull pod's status: still pulling, pulled, or failed to pull."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

__all__ = ["PullOutcome", "pull_outcome"]

PULL_FAILURES = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "RegistryUnavailable",
}


class PullOutcome(Enum):
    PULLING = "pulling"
    PULLED = "pulled"
    FAILED = "failed"


def pull_outcome(pod: Mapping[str, Any], now: datetime, timeout_seconds: float) -> tuple[PullOutcome, str]:
    """What a pull pod says about its image, with a reason for failures.

    A container that ran at all — whatever its exit code — had its image on the node: ``Succeeded``, and
    ``Failed`` with a terminated container, both count as pulled (the command may not exist in the image).
    """
    status = pod.get("status") or {}
    phase = status.get("phase")
    containers = status.get("containerStatuses") or []
    for c in containers:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in PULL_FAILURES:
            return PullOutcome.FAILED, f"{waiting['reason']}: {waiting.get('message', '')}".strip()
    if phase == "Succeeded":
        return PullOutcome.PULLED, ""
    if phase == "Failed":
        ran = any("terminated" in (c.get("state") or {}) for c in containers)
        if ran:
            return PullOutcome.PULLED, ""
        return PullOutcome.FAILED, str(status.get("reason") or status.get("message") or "pod failed")
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    if created:
        started = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        if (now - started).total_seconds() > timeout_seconds:
            return PullOutcome.FAILED, f"no result after {timeout_seconds:.0f} s"
    return PullOutcome.PULLING, ""
