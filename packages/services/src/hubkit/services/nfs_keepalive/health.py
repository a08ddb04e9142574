"""Per-volume health: a small state machine fed with probe results (pure, no I/O).

The JSON it renders is the contract read by the spawner (see docs/services.md):
``{"healthy": bool, "volumes": {name: {"state", "healthy", "unhealthy_since", "last_success",
"failing_step", "error", "consecutive_failures", "latency_seconds"}}, "checked_at": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = ["UNAVAILABLE_MESSAGE", "ProbeResult", "VolumeHealth", "unavailable_volumes"]

UNAVAILABLE_MESSAGE = "home directories are unavailable; an administrator has been alerted"

State = Literal["unknown", "healthy", "unhealthy"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: per-step latencies, and the failing step and error if it failed."""

    volume: str
    finished: datetime
    latencies: Mapping[str, float]
    failed_step: str | None = None
    error: str | None = None
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.failed_step is None


@dataclass
class VolumeHealth:
    name: str
    state: State = "unknown"
    unhealthy_since: datetime | None = None
    last_success: datetime | None = None
    last_probe: datetime | None = None
    failing_step: str | None = None
    error: str | None = None
    consecutive_failures: int = 0
    latencies: dict[str, float] = field(default_factory=dict)

    def record(self, result: ProbeResult) -> str | None:
        """Apply ``result``; returns "unhealthy" or "recovered" when the state changes that way."""
        self.last_probe = result.finished
        self.latencies = dict(result.latencies)
        if result.ok:
            was_unhealthy = self.state == "unhealthy"
            self.state, self.unhealthy_since, self.last_success = "healthy", None, result.finished
            self.failing_step = self.error = None
            self.consecutive_failures = 0
            return "recovered" if was_unhealthy else None
        self.consecutive_failures += 1
        self.failing_step, self.error = result.failed_step, result.error
        if self.state != "unhealthy":
            self.state, self.unhealthy_since = "unhealthy", result.finished
            return "unhealthy"
        return None

    def model(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return t.isoformat() if t else None

        return {
            "state": self.state,
            "healthy": self.state != "unhealthy",
            "unhealthy_since": iso(self.unhealthy_since),
            "last_success": iso(self.last_success),
            "last_probe": iso(self.last_probe),
            "failing_step": self.failing_step,
            "error": self.error,
            "consecutive_failures": self.consecutive_failures,
            "latency_seconds": self.latencies,
        }


def unavailable_volumes(status: Mapping[str, Any], needed: Iterable[str]) -> list[str]:
    """Which of ``needed`` the keepalive's ``/health`` body reports unhealthy (for the spawner).

    Volumes the status does not mention are not reported: an unknown volume is not a known outage.
    """
    volumes = status.get("volumes") or {}
    return [v for v in needed if isinstance(volumes.get(v), dict) and volumes[v].get("healthy") is False]
