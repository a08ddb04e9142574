"""Helpers for the warm-seat tests: a second, real kube-scheduler running the broker's packing config."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from hubkit.services.warmseats import SchedulerConfigInput, scheduler_configuration
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.processes import ManagedProcess, free_port
from hubkit_testing.tools import go_tool
from hubkit_testing.waiting import wait_for

PATCH = "application/merge-patch+json"
__all__ = ["PATCH", "packing_scheduler", "wait_for"]


@contextmanager
def packing_scheduler(cp: ControlPlane, workdir: Path, name: str) -> Iterator[ManagedProcess]:
    """kube-scheduler 1.35 with ``scheduler_configuration()`` as the scheduler identity; stopped after."""
    kubeconfig = str(cp.kubeconfig("scheduler"))
    config = scheduler_configuration(SchedulerConfigInput(name, kubeconfig=kubeconfig, leader_elect=False))
    path = workdir / "packing-scheduler.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config))))
    port = free_port()
    proc = ManagedProcess(
        "packing-scheduler",
        [
            go_tool("kube-scheduler"),
            f"--config={path}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            "--profiling=false",
        ],
        workdir / "packing-scheduler.log",
    ).start()
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def ready() -> bool:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=insecure, timeout=2) as r:
            return bool(r.status == 200)

    try:
        proc.wait_until(ready, 60, "ready")
        yield proc
    finally:
        proc.stop()
