"""Helpers of the cluster-network tests: pods that serve and pods that probe, run on the process node."""

from __future__ import annotations

import subprocess
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubkit_testing.controlplane import ControlPlane

# Run inside a pod (its network and mount namespaces, so its resolv.conf): exit 0 when a TCP
# connection to host:port opens within 2 s and, for HTTP, prints the body.
PROBE = """
import socket, sys, urllib.request
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    if path == "-":
        socket.create_connection((host, port), timeout=2).close()
    else:
        print(urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=2).read().decode(), end="")
except OSError as e:
    print(f"{type(e).__name__}: {e}", end="")
    sys.exit(1)
"""


def server_pod(name: str, labels: dict[str, str], ports: list[int]) -> dict[str, Any]:
    """One container per port, each serving ``<name>:<port>`` over HTTP."""
    containers = [
        {
            "name": f"http-{port}",
            "image": "python",
            "command": [
                "sh",
                "-c",
                f"mkdir -p /srv/www/{port} && echo {name}:{port} > /srv/www/{port}/index.html && "
                f"exec python3 -m http.server {port} --directory /srv/www/{port}",
            ],
            "volumeMounts": [{"name": "www", "mountPath": "/srv/www"}],
        }
        for port in ports
    ]
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": containers, "volumes": [{"name": "www", "emptyDir": {}}]},
    }


def client_pod(
    name: str, labels: dict[str, str] | None = None, dns_policy: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"]}]
    }
    if dns_policy:
        spec["dnsPolicy"] = dns_policy
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def run_pods(cp: ControlPlane, ns: str, *pods: dict[str, Any]) -> dict[str, int]:
    """Create the pods, wait until they run; the pid of each pod's first container, by name."""
    for pod in pods:
        cp.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    pids = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        running = cp.wait_for_pod_phase(ns, name, {"Running", "Failed"}, timeout=60)
        assert running["status"]["phase"] == "Running", running["status"]
        cid = running["status"]["containerStatuses"][0]["containerID"]
        pid = pids[name] = int(cid.removeprefix("process://"))
        # Running means the process started; its mounts are in place once it runs the command itself.
        eventually(lambda pid=pid: _past_init(pid), 30, f"pod {name} running its command")
    return pids


def _past_init(pid: int) -> bool:
    """Whether the container process exec'd its command (no longer ip netns exec/unshare/container_init)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return (
        Path(argv[0].decode()).name not in ("ip", "unshare") and b"hubkit_testing.container_init" not in argv
    )


def in_pod(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command in the namespaces (network, mount) of a pod's container."""
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "-m", "--", *argv], capture_output=True, text=True, timeout=30
    )


def probe(pid: int, host: str, port: int, path: str = "-") -> tuple[bool, str]:
    """Whether the pod reaches host:port (an HTTP GET of ``path`` unless it is "-"), and what it got."""
    result = in_pod(pid, "python3", "-c", PROBE, host, str(port), path)
    return result.returncode == 0, result.stdout + result.stderr


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    """kube-proxy and kube-network-policies act on API changes asynchronously: wait for the effect."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.5)


def wait_for_endpoints(cp: ControlPlane, ns: str, service: str, count: int, timeout: float = 60) -> None:
    """Until the controller manager's EndpointSlices for ``service`` list ``count`` ready addresses."""

    def ready() -> bool:
        try:
            slices = cp.request(
                "GET",
                f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
                f"?labelSelector=kubernetes.io/service-name%3D{service}",
            )["items"]
        except urllib.error.HTTPError:
            return False
        ready = [e for s in slices for e in s.get("endpoints") or [] if e["conditions"].get("ready")]
        return len(ready) >= count

    eventually(ready, timeout, f"{count} ready endpoints of {ns}/{service}")
