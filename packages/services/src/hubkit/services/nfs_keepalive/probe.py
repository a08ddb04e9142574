"""Run one probe in a child process with a hard timeout; a hung child is killed and left behind.

A thread stuck in an NFS call can never be stopped, so the probe runs in a process instead: past
its timeout the service SIGKILLs it and moves on at once. A process in uninterruptible NFS wait only
dies when the call returns, so it is reaped in the background and counted as *stuck* until then;
with too many stuck probes of one volume no new one is started (the volume simply stays unhealthy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from hubkit.services.nfs_keepalive.health import ProbeResult
from hubkit.services.nfs_keepalive.settings import VolumeSettings

__all__ = ["ProbeRunner"]

log = logging.getLogger(__name__)

# A child that has not even started its first step after this long is failing too (the timeout
# proper starts with the first step, so a slow interpreter start never counts as NFS latency).
STARTUP_GRACE = 10.0


class ProbeRunner:
    """Probes one volume; ``clock`` gives the timestamps written into results."""

    def __init__(
        self,
        volume: VolumeSettings,
        file_name: str,
        timeout: float,
        max_stuck: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.volume = volume
        self.file_name = file_name
        self.timeout = timeout
        self.max_stuck = max_stuck
        self.clock = clock
        self.stuck: set[asyncio.subprocess.Process] = set()
        self._reapers: set[asyncio.Task[None]] = set()

    def _result(
        self,
        latencies: dict[str, float],
        step: str | None = None,
        error: str | None = None,
        timed_out: bool = False,
    ) -> ProbeResult:
        return ProbeResult(self.volume.name, self.clock(), latencies, step, error, timed_out)

    async def probe(self) -> ProbeResult:
        if len(self.stuck) >= self.max_stuck:
            return self._result(
                {},
                "stuck",
                f"{len(self.stuck)} earlier probes are still stuck in the kernel; not starting another",
            )
        argv = [
            sys.executable,
            "-m",
            "hubkit.services.nfs_keepalive.worker",
            self.volume.mode,
            self.volume.target,
            self.file_name,
        ]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        latencies: dict[str, float] = {}
        current = "start"
        deadline = time.monotonic() + STARTUP_GRACE
        try:
            while True:
                try:
                    line = await asyncio.wait_for(
                        proc.stdout.readline(), max(0.0, deadline - time.monotonic())
                    )
                except TimeoutError:
                    self._abandon(proc)
                    limit = self.timeout if current != "start" else STARTUP_GRACE
                    return self._result(
                        latencies,
                        current,
                        f"probe timed out after {limit:g} s in step {current}",
                        timed_out=True,
                    )
                if not line:
                    await proc.wait()
                    stderr = (
                        (await proc.stderr.read()).decode(errors="replace").strip() if proc.stderr else ""
                    )
                    return self._result(
                        latencies, current, f"probe worker exited ({proc.returncode}): {stderr[-300:]}"
                    )
                try:
                    event = json.loads(line)
                except ValueError:  # not ours (a library writing to stdout): ignore it
                    continue
                if "begin" in event:
                    if current == "start":
                        deadline = time.monotonic() + self.timeout
                    current = str(event["begin"])
                elif "error" in event:
                    await proc.wait()
                    return self._result(latencies, str(event["step"]), str(event["error"]))
                elif "seconds" in event:
                    latencies[str(event["step"])] = float(event["seconds"])
                elif event.get("done"):
                    await proc.wait()
                    return self._result(latencies)
        except asyncio.CancelledError:
            self._abandon(proc)
            raise

    def _abandon(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        self.stuck.add(proc)

        async def reap() -> None:
            await proc.wait()
            self.stuck.discard(proc)
            log.info("abandoned probe of volume %s exited (%s)", self.volume.name, proc.returncode)

        task = asyncio.ensure_future(reap())
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)
