"""The process kubelet keeps pod status in step with real processes, failures included."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from hubkit_testing.controlplane import PROCESS_NODE, ControlPlane


def _fetch(url: str, timeout: float = 15) -> bytes:
    """GET ``url`` once the server in the pod is listening."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return bytes(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _pod(name: str, container: dict[str, object], **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "main", **container}], **spec}}


def test_exit_code_is_reported_as_failed_with_reason(control_plane: ControlPlane, namespace: str) -> None:
    body = _pod(
        "crash",
        {"image": "busybox", "command": ["sh", "-c", "echo going down; exit 3"]},
        restartPolicy="Never",
    )
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
    pod = control_plane.wait_for_pod_phase(namespace, "crash", {"Failed", "Succeeded"}, timeout=30)
    assert pod["spec"]["nodeName"] == PROCESS_NODE
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert "exited with code 3" in pod["status"]["message"]


def test_run_as_non_root_with_root_image_fails_with_plain_message(
    control_plane: ControlPlane, namespace: str
) -> None:
    body = _pod("rootless", {"image": "busybox", "command": ["true"]}, securityContext={"runAsNonRoot": True})
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
    pod = control_plane.wait_for_pod_phase(namespace, "rootless", {"Failed"}, timeout=30)
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert "runAsNonRoot" in waiting["message"]


def test_pod_gets_its_own_network_volumes_env_and_identity(
    control_plane: ControlPlane, namespace: str
) -> None:
    cm = {"metadata": {"name": "greeting"}, "data": {"index.html": "hello from a configmap\n"}}
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)
    script = (
        'test "$(id -u):$(id -g)" = "2001:3001" && id -G | grep -qw 4001 && exec python3 -m http.server 80'
    )
    body = _pod(
        "web",
        {
            "image": "python:3",
            "command": ["sh", "-c", script],
            "workingDir": "/srv/www",
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "site", "mountPath": "/srv/www", "readOnly": True}],
            # Port 80 inside the pod's own network namespace: no clash with anything on the host.
            "securityContext": {"runAsUser": 2001, "runAsGroup": 3001},
        },
        securityContext={"supplementalGroups": [4001]},
        volumes=[{"name": "site", "configMap": {"name": "greeting"}}],
    )
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
    pod = control_plane.wait_for_pod_phase(namespace, "web", {"Running", "Failed"}, timeout=30)
    assert pod["status"]["phase"] == "Running", pod["status"]
    assert _fetch(f"http://{pod['status']['podIP']}:80/index.html") == b"hello from a configmap\n"
    control_plane.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/web")
    assert control_plane.wait_for_pod_gone(namespace, "web", timeout=30)


def test_persistent_volume_claim_mounts_the_bound_volume(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    backing = tmp_path / "pv"
    backing.mkdir()
    backing.chmod(0o777)
    pv_name = f"pv-{namespace}"
    control_plane.request(
        "POST",
        "/api/v1/persistentvolumes",
        {
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "manual",
                "hostPath": {"path": str(backing)},
                "claimRef": {"namespace": namespace, "name": "home"},
            },
        },
    )
    try:
        control_plane.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
            {
                "metadata": {"name": "home"},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "manual",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        body = _pod(
            "writer",
            {
                "image": "busybox",
                "command": ["sh", "-c", "echo kept > /home/jovyan/work/file && sleep 1"],
                "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan/work", "subPath": "alice"}],
                "securityContext": {"runAsUser": 1000},
            },
            restartPolicy="Never",
            volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}],
        )
        control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
        pod = control_plane.wait_for_pod_phase(namespace, "writer", {"Succeeded", "Failed"}, timeout=60)
        assert pod["status"]["phase"] == "Succeeded", pod["status"]
        assert (backing / "alice" / "file").read_text() == "kept\n"
    finally:
        control_plane.request("DELETE", f"/api/v1/persistentvolumes/{pv_name}")


def test_nested_mount_inside_a_volume_keeps_the_outer_volume_visible(
    control_plane: ControlPlane, namespace: str
) -> None:
    """A course directory mounted under the home volume: both are visible, as with runc."""
    cm = {"metadata": {"name": "course"}, "data": {"README": "week 1\n"}}
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", cm)
    script = "cat /srv/home/course/README && echo mine > /srv/home/notes && cat /srv/home/notes"
    body = _pod(
        "nested",
        {
            "image": "busybox",
            "command": ["sh", "-c", script],
            "volumeMounts": [
                # Listed inner-first on purpose: mounts are applied shallowest first.
                {"name": "course", "mountPath": "/srv/home/course", "readOnly": True},
                {"name": "home", "mountPath": "/srv/home"},
            ],
        },
        restartPolicy="Never",
        volumes=[{"name": "home", "emptyDir": {}}, {"name": "course", "configMap": {"name": "course"}}],
    )
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
    pod = control_plane.wait_for_pod_phase(namespace, "nested", {"Succeeded", "Failed"}, timeout=30)
    log = Path(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"].split("log: ")[-1])
    assert pod["status"]["phase"] == "Succeeded", log.read_text()
    assert log.read_text() == "week 1\nmine\n"


def test_on_failure_restarts_a_failed_container_and_exec_readiness_follows_it(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Process mode restarts too: OnFailure runs the container again after the 10 s back-off, the exec
    readiness probe (run inside the container's namespaces) makes it Ready, and exit 0 ends the pod."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    script = (
        "if [ ! -e /srv/state/once ]; then touch /srv/state/once; exit 1; fi; touch /srv/state/up; sleep 6"
    )
    body = _pod(
        "flaky",
        {
            "image": "busybox",
            "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "state", "mountPath": "/srv/state"}],
            "readinessProbe": {"exec": {"command": ["test", "-e", "/srv/state/up"]}, "periodSeconds": 1},
            "securityContext": {"runAsUser": 1000},
        },
        restartPolicy="OnFailure",
        volumes=[{"name": "state", "hostPath": {"path": str(state)}}],
    )
    control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods", body)
    path = f"/api/v1/namespaces/{namespace}/pods/flaky"
    seen: list[tuple[str, int, bool]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pod = control_plane.request("GET", path)
        status = (pod.get("status", {}).get("containerStatuses") or [{}])[0]
        seen.append(
            (pod["status"].get("phase", ""), status.get("restartCount", 0), status.get("ready", False))
        )
        if seen[-1][0] in ("Succeeded", "Failed"):
            break
        time.sleep(0.25)
    assert seen[-1][:2] == ("Succeeded", 1), seen[-5:]
    assert ("Running", 1, True) in seen  # ready once the probe found /srv/state/up
    assert not [s for s in seen if s[1] == 0 and s[2]]  # never ready before the restart
    assert status["lastState"]["terminated"]["exitCode"] == 1
