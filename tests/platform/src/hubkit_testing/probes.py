"""Pure rules of container probes and restarts, as the kubelet applies them (no I/O here).

A probe's result flips only after ``successThreshold`` consecutive successes or ``failureThreshold``
consecutive failures; it first runs ``initialDelaySeconds`` after the container started, then every
``periodSeconds``. Before any verdict a readiness or startup probe counts as failed and a liveness
probe as passed. Liveness and readiness probes wait for the startup probe to pass. A container that
exits is restarted under ``restartPolicy`` after a back-off that starts at 10 s and doubles up to
5 minutes, reset once a run lasted 10 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBE_KINDS = ("startupProbe", "readinessProbe", "livenessProbe")
ACTIONS = ("httpGet", "tcpSocket", "exec")

BACKOFF_BASE_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 300.0
BACKOFF_RESET_SECONDS = 600.0


class ProbeConfigError(ValueError):
    """A probe this kubelet cannot run (a plain sentence naming the container)."""


@dataclass(frozen=True)
class Probe:
    kind: str  # startupProbe, readinessProbe or livenessProbe
    action: str  # httpGet, tcpSocket or exec
    handler: dict[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @property
    def initial_result(self) -> bool:
        """What the probe says before its first verdict: only liveness assumes the best."""
        return self.kind == "livenessProbe"


def parse_probe(kind: str, spec: dict[str, Any], container: str) -> Probe:
    """One probe of a container spec, with the API's defaults."""
    actions = [a for a in ACTIONS if a in spec]
    if len(actions) != 1:
        other = sorted(set(spec) & {"grpc"}) or actions or ["no handler"]
        raise ProbeConfigError(
            f"{kind} of container {container} uses {', '.join(other)}; only one of "
            f"{', '.join(ACTIONS)} is supported here."
        )
    success = int(spec.get("successThreshold", 1))
    if kind != "readinessProbe" and success != 1:
        raise ProbeConfigError(f"{kind} of container {container} must have successThreshold 1.")
    return Probe(
        kind=kind,
        action=actions[0],
        handler=dict(spec[actions[0]]),
        initial_delay=float(spec.get("initialDelaySeconds", 0)),
        period=float(spec.get("periodSeconds", 10)),
        timeout=float(spec.get("timeoutSeconds", 1)),
        success_threshold=success,
        failure_threshold=int(spec.get("failureThreshold", 3)),
    )


def container_probes(container: dict[str, Any]) -> dict[str, Probe]:
    """The container's probes by kind."""
    return {
        kind: parse_probe(kind, container[kind], container["name"])
        for kind in PROBE_KINDS
        if container.get(kind)
    }


@dataclass
class ProbeTracker:
    """The running verdict of one probe over one run of its container."""

    probe: Probe
    result: bool | None = None
    successes: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        if self.result is None:
            self.result = self.probe.initial_result

    def record(self, ok: bool) -> bool:
        """Count one attempt; the verdict after it."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.probe.success_threshold:
                self.result = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= self.probe.failure_threshold:
                self.result = False
        return bool(self.result)

    def next_delay(self, attempts: int) -> float:
        """Seconds to wait before attempt number ``attempts`` (0 is the first)."""
        return self.probe.initial_delay if attempts == 0 else self.probe.period


def resolve_port(port: int | str, container: dict[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ProbeConfigError(f"container {container['name']} has no port named {port!r} for its probe.")


def http_success(status: int) -> bool:
    """httpGet passes on any status from 200 to 399, as the kubelet's prober."""
    return 200 <= status < 400


def should_restart(policy: str, exit_code: int) -> bool:
    """Whether a container that exited with ``exit_code`` runs again under ``restartPolicy``."""
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def backoff_seconds(
    restarts: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """The wait before restart number ``restarts + 1``: 10 s, 20 s, 40 s, … up to 5 minutes."""
    return float(min(cap, base * 2 ** min(restarts, 30)))


def next_backoff(
    step: int, ran_seconds: float, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> tuple[float, int]:
    """(wait before the next restart, the next step) after a run of ``ran_seconds``: the back-off
    grows with each crash and starts over once a run lasted 10 minutes."""
    if ran_seconds >= BACKOFF_RESET_SECONDS:
        step = 0
    return backoff_seconds(step, base, cap), step + 1
