"""A pod run from a locally built image (image mode) serves through a Service: its endpoint turns
ready when its readiness probe passes, and another pod reaches it by the Service's DNS name."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from images._pods import build_local_image

from hubkit_testing.controlplane import ControlPlane

from ._net import client_pod, eventually, probe, run_pods, wait_for_endpoints


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The services image under a tag of this module's own (other worktrees' builds prune the rest)."""
    built = build_local_image("services")
    ref = f"localhost/hubkit-local/kubelet-test:{built.rsplit(':', 1)[1]}-{os.getpid()}"
    subprocess.run(["podman", "tag", built, ref], check=True, capture_output=True)
    yield ref
    subprocess.run(["podman", "untag", ref], capture_output=True)


def _ready_endpoints(cp: ControlPlane, ns: str, service: str) -> int:
    try:
        slices = cp.request(
            "GET",
            f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"
            f"?labelSelector=kubernetes.io/service-name%3D{service}",
        )["items"]
    except urllib.error.HTTPError:
        return 0
    return len([e for s in slices for e in s.get("endpoints") or [] if e["conditions"].get("ready")])


def test_image_pod_serves_through_a_service_once_ready(
    net_plane: ControlPlane, net_namespace: str, image: str, tmp_path: Path
) -> None:
    cp, ns = net_plane, net_namespace
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("from the services image\n")
    container = {
        "name": "web",
        "image": image,
        "command": ["python3", "-m", "http.server", "8080", "--directory", "/srv/www"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "volumeMounts": [{"name": "www", "mountPath": "/srv/www", "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
        "securityContext": {
            "runAsUser": 65534,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    server = {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "containers": [container],
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "www", "hostPath": {"path": str(www)}}],
        },
    }
    service = {
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    cp.request("POST", f"/api/v1/namespaces/{ns}/services", service)
    cp.request("POST", f"/api/v1/namespaces/{ns}/pods", server)
    pids = run_pods(cp, ns, client_pod("client"))
    running = cp.wait_for_pod_phase(ns, "web", {"Running", "Failed"}, timeout=60)
    assert running["status"]["phase"] == "Running", running["status"]
    ip = running["status"]["podIP"]

    # Serving on its pod IP, but not ready (no /ready yet): the Service has no ready endpoint.
    eventually(lambda: probe(pids["client"], ip, 8080, "/index.html")[0], 60, "the server listening")
    time.sleep(2)
    assert _ready_endpoints(cp, ns, "web") == 0
    (www / "ready").write_text("ok\n")
    wait_for_endpoints(cp, ns, "web", 1, timeout=30)
    answers: list[str] = []

    def reached() -> bool:
        ok, text = probe(pids["client"], "web", 80, "/index.html")
        answers.append(text)
        return ok

    eventually(reached, 30, "the client reaching http://web/ through the Service")
    assert answers[-1] == "from the services image\n"
