"""Must-show 1: login → pod created, scheduled, run as a process → reachable via the proxy → stopped."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from hubkit_testing.controlplane import PROCESS_NODE, ControlPlane
from hubkit_testing.hub import Hub


def _pid_of(pod: dict[str, object]) -> int:
    statuses = pod["status"]["containerStatuses"]  # type: ignore[index]
    container_id: str = statuses[0]["containerID"]
    assert container_id.startswith("process://"), container_id
    return int(container_id.removeprefix("process://"))


async def test_login_spawn_reach_and_stop_with_stock_kubespawner(
    kube_hub: Hub, control_plane: ControlPlane, namespace: str
) -> None:
    # A person logs in through the form; the hub redirects to the spawn page and KubeSpawner starts.
    browser_like = await kube_hub.login("alice")
    try:
        await kube_hub.wait_for_server("alice", ready=True, timeout=120)

        pod = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/pods/jupyter-alice")
        assert pod["spec"]["nodeName"] == PROCESS_NODE
        assert pod["status"]["phase"] == "Running"
        assert ipaddress.ip_address(pod["status"]["podIP"]) in control_plane.net.process_pod_range  # type: ignore[union-attr]

        events = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        scheduled = [
            e for e in events if e["reason"] == "Scheduled" and e["involvedObject"]["name"] == "jupyter-alice"
        ]
        assert scheduled, "the real scheduler should have bound the pod (Scheduled event)"
        assert (
            scheduled[0].get("reportingComponent") == "default-scheduler"
            or scheduled[0]["source"].get("component") == "default-scheduler"
        )

        # The single-user server is a real local process, running as the image's user (jovyan, 1000).
        pid = _pid_of(pod)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert b"jupyterhub-singleuser" in cmdline
        assert os.stat(f"/proc/{pid}").st_uid == 1000
        assert b"JUPYTERHUB_API_TOKEN=" in Path(f"/proc/{pid}/environ").read_bytes()

        # Reached through configurable-http-proxy with the user's own token.
        token = await kube_hub.user_token("alice")
        r = await browser_like.get("/user/alice/api/status", headers={"Authorization": f"token {token}"})
        assert r.status_code == 200, r.text
        assert "started" in r.json()

        await kube_hub.stop_server("alice")
        gone = control_plane.wait_for_pod_gone(namespace, "jupyter-alice", timeout=60)
        assert gone, "stopping the server must delete the pod"
        assert not Path(f"/proc/{pid}").exists(), "stopping the server must end the process"
    finally:
        await browser_like.aclose()
