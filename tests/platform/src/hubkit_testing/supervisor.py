"""One container's life on the process node: its probes while it runs, and its restarts.

The rules (thresholds, delays, back-off, which exits restart) are in ``probes.py``; this module runs
them: httpGet and tcpSocket from the node to the pod's address, exec inside the container, a restart
under ``restartPolicy`` after the back-off with ``CrashLoopBackOff`` reported meanwhile, and a kill
(then a restart) when the liveness or startup probe fails.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .pods import PodRuntime, PodStartError
from .podstatus import ContainerState, now
from .probes import (
    Probe,
    ProbeTracker,
    container_probes,
    http_success,
    next_backoff,
    resolve_port,
    should_restart,
)

log = logging.getLogger("process-kubelet")


def _http_get(url: str, headers: dict[str, str], timeout: float) -> int:
    """The status of one GET, without proxies (the pod network is local) and, as the kubelet does
    for HTTPS probes, without verifying the certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(url, headers={"User-Agent": "kube-probe/1.35", **headers})
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


@dataclass
class ContainerSupervisor:
    runtime: PodRuntime
    container: dict[str, Any]
    publish: Callable[[], Awaitable[None]]
    probes: dict[str, Probe] = field(init=False)
    killed_by: str | None = None

    def __post_init__(self) -> None:
        self.probes = container_probes(self.container)

    @property
    def name(self) -> str:
        return str(self.container["name"])

    @property
    def state(self) -> ContainerState:
        return next(c for c in self.runtime.containers if c.name == self.name)

    @property
    def grace(self) -> float:
        return float(self.runtime.pod["spec"].get("terminationGracePeriodSeconds", 30))

    async def run(self) -> None:
        """Supervise the container until it ends for good (or the pod is deleted: cancelled)."""
        policy = self.runtime.pod["spec"].get("restartPolicy") or "Always"
        pod = f"{self.runtime.ns}/{self.runtime.pod['metadata']['name']}"
        step = 0
        while True:
            started = time.monotonic()
            code = await self._watch_run()
            state = self.state
            state.exit_code, state.finished_at = code, now()
            logfile = self.runtime._log(self.name)
            how = f"failed its {self.killed_by} and was killed" if self.killed_by else "exited"
            state.message = f"{how} with code {code}; log: {logfile}"
            if not should_restart(policy, code):
                state.final = True
                log.info("container %s of pod %s ended with %s", self.name, pod, code)
                return
            delay, step = next_backoff(step, time.monotonic() - started)
            self._wait_for_restart(delay, pod)
            await self.publish()
            await self._restart(delay, step, pod)

    def _wait_for_restart(self, delay: float, pod: str) -> None:
        state = self.state
        state.last_terminated = state.terminated()
        state.pid, state.exit_code, state.reason, state.message = None, None, None, None
        state.probe_ready = state.probe_started = False
        state.waiting = (
            "CrashLoopBackOff",
            f"back-off {delay:.0f}s restarting failed container={self.name} pod={pod}",
        )

    async def _restart(self, delay: float, step: int, pod: str) -> None:
        """Sleep out the back-off, then start the container again (retrying a failed start)."""
        while True:
            await asyncio.sleep(delay)
            self.killed_by = None
            try:
                await self.runtime.launch(self.container)
            except PodStartError as e:
                log.warning("container %s of pod %s cannot restart: %s", self.name, pod, e)
                delay, step = next_backoff(step, 0)
                self.state.waiting = (e.reason, str(e))
                await self.publish()
                continue
            state = self.state
            state.waiting = None
            state.restart_count += 1
            log.info("container %s of pod %s restarted (%d)", self.name, pod, state.restart_count)
            return

    async def _watch_run(self) -> int:
        """Probe the current run until the container exits; its exit code."""
        proc = self.runtime.processes[self.name]
        state = self.state
        state.probe_started = "startupProbe" not in self.probes
        state.probe_ready = "readinessProbe" not in self.probes
        await self.publish()
        prober = asyncio.create_task(self._probe_run())
        try:
            code = await proc.wait()
            # Killed by a signal: reported as the shell and the kubelet do, 128 + the signal.
            return 128 - code if code < 0 else code
        finally:
            prober.cancel()
            await asyncio.gather(prober, return_exceptions=True)

    async def _probe_run(self) -> None:
        startup = self.probes.get("startupProbe")
        if startup is not None and not await self._startup(ProbeTracker(startup)):
            return
        loops = [self._readiness(ProbeTracker(p)) for k, p in self.probes.items() if k == "readinessProbe"]
        loops += [self._liveness(ProbeTracker(p)) for k, p in self.probes.items() if k == "livenessProbe"]
        await asyncio.gather(*loops)

    async def _startup(self, tracker: ProbeTracker) -> bool:
        attempts = 0
        while True:
            await asyncio.sleep(tracker.next_delay(attempts))
            attempts += 1
            if tracker.record(await self._attempt(tracker.probe)):
                self.state.probe_started = True
                await self.publish()
                return True
            if tracker.failures >= tracker.probe.failure_threshold:
                await self._kill("startup probe")
                return False

    async def _readiness(self, tracker: ProbeTracker) -> None:
        attempts = 0
        while True:
            await asyncio.sleep(tracker.next_delay(attempts))
            attempts += 1
            ready = tracker.record(await self._attempt(tracker.probe))
            if ready != self.state.probe_ready:
                self.state.probe_ready = ready
                await self.publish()

    async def _liveness(self, tracker: ProbeTracker) -> None:
        attempts = 0
        while True:
            await asyncio.sleep(tracker.next_delay(attempts))
            attempts += 1
            if not tracker.record(await self._attempt(tracker.probe)):
                await self._kill("liveness probe")
                return

    async def _kill(self, what: str) -> None:
        log.info("container %s of pod %s failed its %s; killing it", self.name, self.runtime.ns, what)
        self.killed_by = what
        # Shielded: the run's watcher cancels this prober as soon as the process is gone.
        await asyncio.shield(self.runtime.kill_container(self.name, self.grace))

    async def _attempt(self, probe: Probe) -> bool:
        """One probe attempt; any error (refused, timeout, bad status) is a failure."""
        h = probe.handler
        try:
            if probe.action == "exec":
                code = await self.runtime.exec_in(self.name, list(h.get("command") or []), probe.timeout)
                return code == 0
            port = resolve_port(h["port"], self.container)
            host = h.get("host") or str(self.runtime.address)
            if probe.action == "tcpSocket":
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), probe.timeout)
                writer.close()
                return True
            scheme = str(h.get("scheme", "HTTP")).lower()
            path = h.get("path") or "/"
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
            status = await asyncio.to_thread(_http_get, url, headers, probe.timeout)
            return http_success(status)
        except (OSError, TimeoutError, ValueError):
            return False
