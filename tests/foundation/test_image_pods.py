"""Image mode of the process kubelet: a pod whose image was built here (the services image that
images/build-local.sh makes) runs from that image with podman, in the pod's own network namespace, with
its volumes, env and security context; probes decide readiness and liveness; crashing containers are
restarted with a growing back-off."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from images._pods import build_local_image
from platform_net._net import client_pod, eventually, probe, run_pods

from hubkit_testing.controlplane import PROCESS_NODE, ControlPlane

SERVER = """
set -e
cd /srv/www
id -u > uid
id -G > groups
cp /etc/site/index.html .
printf '%s\\n' "$GREETING" "$DB_PASSWORD" "$POD_IP" "$(cat /etc/creds/password)" > env
if touch /rootfs-probe 2>/dev/null; then echo writable > root; else echo read-only > root; fi
exec python3 -m http.server 8080 --bind 0.0.0.0
"""


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The services image under a tag of this module's own: builds of other worktrees prune the
    services repository's other tags in the shared container storage, not this one."""
    built = build_local_image("services")
    ref = f"localhost/hubkit-local/kubelet-test:{built.rsplit(':', 1)[1]}-{os.getpid()}"
    subprocess.run(["podman", "tag", built, ref], check=True, capture_output=True)
    yield ref
    subprocess.run(["podman", "untag", ref], capture_output=True)


def _pod(cp: ControlPlane, ns: str, name: str) -> dict[str, Any]:
    return cp.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")


def _until(
    cp: ControlPlane, ns: str, name: str, check: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The pod once ``check`` holds for it."""
    deadline = time.monotonic() + timeout
    while True:
        pod = _pod(cp, ns, name)
        if check(pod):
            return pod
        assert time.monotonic() < deadline, pod.get("status")
        time.sleep(0.25)


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses: list[dict[str, Any]] = pod.get("status", {}).get("containerStatuses") or [{}]
    return statuses[0]


def _podman_names(pod_uid: str) -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout
    return [n for n in out.split() if f"-{pod_uid[:8]}-" in n]


def test_image_pod_runs_its_volumes_env_and_user_and_gets_ready_by_its_probe(
    control_plane: ControlPlane, namespace: str, image: str, tmp_path: Path
) -> None:
    cp, ns = control_plane, namespace
    www = tmp_path / "www"
    www.mkdir()
    www.chmod(0o777)
    cp.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        {"metadata": {"name": "site"}, "data": {"index.html": "served from the image\n"}},
    )
    secret = {"metadata": {"name": "creds"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}
    cp.request("POST", f"/api/v1/namespaces/{ns}/secrets", secret)
    container = {
        "name": "web",
        "image": image,
        "command": ["sh", "-c", SERVER],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            # $(VAR) expands only variables defined earlier in the list, as in Kubernetes.
            {"name": "GREETING", "value": "hello $(POD_IP) $(DB_PASSWORD)"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        ],
        "volumeMounts": [
            {"name": "www", "mountPath": "/srv/www"},
            {"name": "site", "mountPath": "/etc/site", "readOnly": True},
            {"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
        ],
        # Ready only once /ready exists: the test writes it on the host side of the hostPath volume.
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
        # http.server looks its address up in DNS before it listens, which takes a while without a
        # cluster DNS: the startup probe holds the liveness probe back until it listens.
        "startupProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1, "failureThreshold": 60},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
        "securityContext": {
            "runAsUser": 1234,
            "runAsGroup": 2345,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "containers": [container],
            "securityContext": {"fsGroup": 3456},
            "terminationGracePeriodSeconds": 2,
            "volumes": [
                {"name": "www", "hostPath": {"path": str(www)}},
                {"name": "site", "configMap": {"name": "site"}},
                {"name": "creds", "secret": {"secretName": "creds"}},
            ],
        },
    }
    cp.request("POST", f"/api/v1/namespaces/{ns}/pods", body)
    pods = run_pods(cp, ns, client_pod("client"))
    pod = cp.wait_for_pod_phase(ns, "web", {"Running", "Failed"}, timeout=60)
    assert pod["status"]["phase"] == "Running", pod["status"]
    assert pod["spec"]["nodeName"] == PROCESS_NODE
    assert _container(pod)["containerID"].startswith("podman://")
    ip = pod["status"]["podIP"]

    # Another pod reaches it on its pod IP; without /ready the readiness probe keeps it unready.
    answer: list[str] = []

    def reached() -> bool:
        ok, text = probe(pods["client"], ip, 8080, "/index.html")
        answer.append(text)
        return ok

    eventually(reached, 60, f"the client pod reaching http://{ip}:8080/")
    assert answer[-1] == "served from the image\n"
    time.sleep(2)
    pod = _pod(cp, ns, "web")
    assert not _ready(pod)
    assert _container(pod)["ready"] is False
    (www / "ready").write_text("ok\n")
    pod = _until(cp, ns, "web", _ready, 15)
    assert _container(pod)["ready"] is True

    # What the container saw: its user and groups (fsGroup added), env and volumes, a read-only root.
    assert (www / "uid").read_text() == "1234\n"
    assert set((www / "groups").read_text().split()) == {"2345", "3456"}
    assert (www / "env").read_text() == f"hello {ip} $(DB_PASSWORD)\ns3cret\n{ip}\ns3cret\n"
    assert (www / "root").read_text() == "read-only\n"
    assert (www / "index.html").stat().st_uid == 1234
    # The liveness probe passes all along: no restart.
    time.sleep(3)
    assert _container(_pod(cp, ns, "web"))["restartCount"] == 0

    cp.request("DELETE", f"/api/v1/namespaces/{ns}/pods/web")
    assert cp.wait_for_pod_gone(ns, "web", timeout=30)
    assert _podman_names(pod["metadata"]["uid"]) == []


def test_crashing_container_goes_to_crash_loop_back_off_with_a_growing_delay(
    control_plane: ControlPlane, namespace: str, image: str
) -> None:
    cp, ns = control_plane, namespace
    body = {
        "metadata": {"name": "crash"},
        "spec": {
            "containers": [
                {"name": "main", "image": image, "command": ["sh", "-c", "echo going down; exit 3"]}
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }
    cp.request("POST", f"/api/v1/namespaces/{ns}/pods", body)

    def waiting(restarts: int) -> Callable[[dict[str, Any]], bool]:
        def check(pod: dict[str, Any]) -> bool:
            status = _container(pod)
            reason = status.get("state", {}).get("waiting", {}).get("reason")
            return reason == "CrashLoopBackOff" and status.get("restartCount") == restarts

        return check

    first = _until(cp, ns, "crash", waiting(0), 60)
    t0 = time.monotonic()
    status = _container(first)
    assert first["status"]["phase"] == "Running"
    assert not _ready(first)
    assert status["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=main")
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["lastState"]["terminated"]["reason"] == "Error"

    second = _until(cp, ns, "crash", waiting(1), 40)
    t1 = time.monotonic()
    assert _container(second)["state"]["waiting"]["message"].startswith("back-off 20s")
    _until(cp, ns, "crash", waiting(2), 60)
    t2 = time.monotonic()
    # 10 s, then 20 s (each plus the container's own short run).
    assert 9 < t1 - t0 < 16, t1 - t0
    assert 19 < t2 - t1 < 27, t2 - t1
    cp.request("DELETE", f"/api/v1/namespaces/{ns}/pods/crash")
    assert cp.wait_for_pod_gone(ns, "crash", timeout=30)


def test_liveness_failure_restarts_the_container(
    control_plane: ControlPlane, namespace: str, image: str
) -> None:
    cp, ns = control_plane, namespace
    # Healthy for about 3 s (the exec probe finds /tmp/healthy), then not.
    script = "touch /tmp/healthy; (sleep 3; rm /tmp/healthy) & exec sleep infinity"
    container = {
        "name": "main",
        "image": image,
        "command": ["sh", "-c", script],
        "livenessProbe": {
            "exec": {"command": ["test", "-e", "/tmp/healthy"]},
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    }
    body = {
        "metadata": {"name": "sick"},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
    }
    cp.request("POST", f"/api/v1/namespaces/{ns}/pods", body)
    pod = cp.wait_for_pod_phase(ns, "sick", {"Running"}, timeout=60)
    assert _container(pod)["restartCount"] == 0

    def killed(pod: dict[str, Any]) -> bool:
        return "terminated" in (_container(pod).get("lastState") or {})

    pod = _until(cp, ns, "sick", killed, 30)
    last = _container(pod)["lastState"]["terminated"]
    assert "failed its liveness probe" in last["message"]
    assert last["exitCode"] == 137  # SIGKILL after the grace period: sleep as PID 1 ignores SIGTERM

    def restarted(pod: dict[str, Any]) -> bool:
        status = _container(pod)
        return status.get("restartCount") == 1 and "running" in status.get("state", {})

    pod = _until(cp, ns, "sick", restarted, 30)
    assert _ready(pod)
    cp.request("DELETE", f"/api/v1/namespaces/{ns}/pods/sick")
    assert cp.wait_for_pod_gone(ns, "sick", timeout=30)
