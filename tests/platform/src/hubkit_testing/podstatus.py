"""Pure builders for the status the process kubelet reports for a pod (as JSON-ready dicts)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the kubelet knows of one container."""

    name: str
    image: str
    pid: int | None = None
    started_at: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    reason: str | None = None
    message: str | None = None

    def as_status(self) -> dict[str, Any]:
        if self.exit_code is not None or (self.reason and self.pid is None):
            if self.exit_code is None:  # never started: waiting with a reason
                state: dict[str, Any] = {"waiting": {"reason": self.reason, "message": self.message}}
            else:
                state = {
                    "terminated": {
                        "exitCode": self.exit_code,
                        "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
                        "message": self.message,
                        "startedAt": self.started_at,
                        "finishedAt": self.finished_at,
                    }
                }
        elif self.pid is not None:
            state = {"running": {"startedAt": self.started_at}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        running = "running" in state
        return {
            "name": self.name,
            "image": self.image,
            "imageID": self.image,
            "containerID": f"process://{self.pid}" if self.pid else None,
            "ready": running,
            "started": running,
            "restartCount": 0,
            "state": state,
        }


def _condition(kind: str, ok: bool, since: str, reason: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": since}
    if reason:
        cond["reason"] = reason
    return cond


def pod_status(
    phase: str,
    pod_ip: str | None,
    host_ip: str,
    started: str,
    containers: list[ContainerState],
    message: str | None = None,
) -> dict[str, Any]:
    """The pod's whole status; phase is Pending, Running, Succeeded or Failed."""
    ready = phase == "Running" and all(c.pid is not None and c.exit_code is None for c in containers)
    t = now()
    status: dict[str, Any] = {
        "phase": phase,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": started,
        "conditions": [
            _condition("PodReadyToStartContainers", pod_ip is not None, started),
            _condition("Initialized", phase != "Pending" or pod_ip is not None, started),
            _condition("ContainersReady", ready, t, None if ready else "ContainersNotReady"),
            _condition("Ready", ready, t, None if ready else "ContainersNotReady"),
            _condition("PodScheduled", True, started),
        ],
        "containerStatuses": [c.as_status() for c in containers],
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if message:
        status["message"] = message
        status["reason"] = next((c.reason for c in containers if c.reason), None)
    return status
