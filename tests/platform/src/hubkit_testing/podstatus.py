"""Pure builders for the status the process kubelet reports for a pod (as JSON-ready dicts)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the kubelet knows of one container (its current run, and the one before a restart)."""

    name: str
    image: str
    pid: int | None = None
    started_at: str | None = None
    exit_code: int | None = None
    finished_at: str | None = None
    reason: str | None = None
    message: str | None = None
    # ``podman://<name>`` for a container run from a local image; ``process://<pid>`` otherwise.
    runtime_id: str | None = None
    restart_count: int = 0
    # Between two runs: (reason, message), e.g. CrashLoopBackOff while the back-off lasts.
    waiting: tuple[str, str] | None = None
    last_terminated: dict[str, Any] | None = None
    # Probe results: readiness (True without a readinessProbe) and startup (True without a startupProbe).
    probe_ready: bool = True
    probe_started: bool = True
    final: bool = False  # terminated and not restarted again (restartPolicy)

    @property
    def running(self) -> bool:
        return self.pid is not None and self.exit_code is None and self.waiting is None

    @property
    def ready(self) -> bool:
        return self.running and self.probe_ready and self.probe_started

    def terminated(self) -> dict[str, Any]:
        return {
            "exitCode": self.exit_code,
            "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
            "message": self.message,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        }

    def as_status(self) -> dict[str, Any]:
        if self.waiting is not None:
            state: dict[str, Any] = {"waiting": {"reason": self.waiting[0], "message": self.waiting[1]}}
        elif self.exit_code is not None:
            state = {"terminated": self.terminated()}
        elif self.reason and self.pid is None:  # never started: waiting with a reason
            state = {"waiting": {"reason": self.reason, "message": self.message}}
        elif self.pid is not None:
            state = {"running": {"startedAt": self.started_at}}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        running = "running" in state
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image,
            "containerID": self.runtime_id or (f"process://{self.pid}" if self.pid else None),
            "ready": running and self.ready,
            "started": running and self.probe_started,
            "restartCount": self.restart_count,
            "state": state,
        }
        if self.last_terminated is not None:
            status["lastState"] = {"terminated": self.last_terminated}
        return status


def pod_phase(containers: list[ContainerState]) -> str:
    """Running until every container ended for good; then Succeeded if all exited 0, else Failed."""
    if not containers or not all(c.final for c in containers):
        return "Running"
    return "Succeeded" if all(c.exit_code == 0 for c in containers) else "Failed"


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
    # Ready follows the readiness probes (a container without one is ready while it runs).
    ready = phase == "Running" and all(c.ready for c in containers)
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
