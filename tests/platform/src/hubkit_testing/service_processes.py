"""HubKit's service commands as real processes for tests: the prepuller; the NFS keepalive on a tmpfs."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .processes import ManagedProcess, free_port

BIN = Path(sys.executable).parent


@dataclass
class PrepullerProcess:
    """``hubkit-prepuller`` with its status server on ``port``."""

    process: ManagedProcess
    port: int

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self) -> dict[str, Any]:
        return dict(json.loads(self.get("/status")[1]))

    def stop_cleanly(self, timeout: float = 15) -> int:
        """SIGTERM and the exit code (the service's clean stop answers 0)."""
        popen = self.process.popen
        assert popen is not None
        popen.terminate()
        return popen.wait(timeout)


def start_prepuller(workdir: Path, settings: dict[str, Any], port: int | None = None) -> PrepullerProcess:
    """Run ``hubkit-prepuller`` with ``settings`` (no ``HUBKIT_PREPULLER_*`` from the environment) until
    its ``/health`` answers 200."""
    port = port or free_port()
    config = workdir / "prepuller.json"
    config.write_text(json.dumps({**settings, "listen_host": "127.0.0.1", "listen_port": port}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_PREPULLER_")}
    argv = [str(BIN / "hubkit-prepuller"), "--config", str(config)]
    running = PrepullerProcess(ManagedProcess("prepuller", argv, workdir / "prepuller.log", env=env), port)
    running.process.start().wait_until(lambda: running.get("/health")[0] == 200, 30, "healthy")
    return running


def start_tmpfs_keepalive(workdir: Path, config_extra: str = "") -> tuple[ManagedProcess, str, Path]:
    """``hubkit-nfs-keepalive`` probing a 512 KiB tmpfs volume ``home`` in its own mount namespace
    (nothing leaks out); returns the process (the caller stops it), its base URL and the volume."""
    volume = workdir / "home"
    volume.mkdir()
    port = free_port()
    config = workdir / "keepalive.yaml"
    config.write_text(
        f"volumes:\n  - name: home\n    path: {volume}\ninterval_seconds: 0.3\ntimeout_seconds: 3\n"
        f"listen: 127.0.0.1:{port}\n{config_extra}"
    )
    keepalive = BIN / "hubkit-nfs-keepalive"
    script = f"mount -t tmpfs -o size=512k tmpfs {volume} && exec {keepalive} --config {config}"
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
    return (
        ManagedProcess("keepalive", argv, workdir / "keepalive.log").start(),
        f"http://127.0.0.1:{port}",
        volume,
    )
