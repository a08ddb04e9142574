"""The prepuller pulls a private registry's menu with the user pods' pull secret.

A hub publishes a categorised menu read from a token-auth docker-registry; hubkit-prepuller (real process,
real control plane) creates pull pods for the prepulled tags only, each naming the Secret in
``imagePullSecrets``, and the Secret the pod names opens the registry for exactly that image, as the
kubelet would use it (the process kubelet runs no registry pulls itself).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from hubkit.spawner.pull_secrets import credentials_for
from hubkit.spawner.registry_client import RegistryClient
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.nodes import KWOK_TAINT, NodeSpec, kwok_node_manifest
from hubkit_testing.service_processes import start_prepuller
from hubkit_testing.waiting import wait_for

from .conftest import HubMaker, show_form
from .test_registry_auth import PASSWORD, course_registry
from .test_registry_hub import REPO, SECRET, create_pull_secret, menu_config


def _pull_pods(cp: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cp.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
        if "hubkit.dev/prepull-image" in p["metadata"].get("annotations", {})
    ]


async def test_pull_pods_carry_the_pull_secret_that_opens_the_registry(
    tmp_path: Path,
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    namespace: str,
) -> None:
    tag = secrets.token_hex(3)
    label = {"hubkit.dev/pp-secret-test": tag}
    node = f"pp-secret-{tag}"
    control_plane.request("POST", "/api/v1/nodes", kwok_node_manifest(NodeSpec(node, labels=label)))
    control_plane.wait_for_nodes_ready([node])
    try:
        with course_registry(tmp_path / "registry", "token", REPO) as (server, _repo):
            create_pull_secret(control_plane, restricted_namespace, server, PASSWORD)
            create_pull_secret(control_plane, namespace, server, PASSWORD)  # the prepuller's namespace
            hub = hubkit_hub(menu_config(server) + "\nc.HubKitSpawner.image_menu_publish_interval = 1\n")
            await show_form(hub, "student")  # publishes the menu
            wait_for(
                lambda: (
                    "hubkit-image-menu"
                    in {
                        c["metadata"]["name"]
                        for c in control_plane.request(
                            "GET", f"/api/v1/namespaces/{restricted_namespace}/configmaps"
                        )["items"]
                    }
                ),
                30,
                "the published menu",
            )
            settings = {
                "namespace": namespace,
                "kubeconfig": str(control_plane.admin_kubeconfig),
                "menu_namespaces": [restricted_namespace],
                "node_selector": label,
                "tolerations": [{"key": KWOK_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
                "image_pull_secrets": [SECRET],
                "per_node_concurrency": 8,
                "resync_seconds": 2,
            }
            (tmp_path / "prepuller").mkdir()
            running = start_prepuller(tmp_path / "prepuller", settings)
            try:
                pods = wait_for(
                    lambda: len(p := _pull_pods(control_plane, namespace)) >= 5 and p, 60, "five pull pods"
                )
                prepulled = {
                    f"{server.host}/{REPO}:{t}"
                    for t in ["recommended", "r1_10_0", "w_2024_7", "w_2024_6", "d_2024_03_08"]
                }
                assert {p["spec"]["containers"][0]["image"] for p in pods} == prepulled
                for pod in pods:
                    assert pod["spec"]["imagePullSecrets"] == [{"name": SECRET}]
                    named = pod["spec"]["imagePullSecrets"][0]["name"]
                    secret = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{named}")
                    image = pod["spec"]["containers"][0]["image"]
                    host, _, rest = image.partition("/")
                    repo, _, image_tag = rest.rpartition(":")
                    credentials = credentials_for(host, [(named, secret["data"])])
                    assert credentials is not None
                    assert await RegistryClient(f"http://{host}", credentials).tag_exists(repo, image_tag)
                prepuller_log = (tmp_path / "prepuller" / "prepuller.log").read_text(errors="replace")
                status = json.dumps(running.status())
                for text in (prepuller_log, status):
                    assert PASSWORD not in text
                    assert not any(t in text for t in (server.tokens.issued if server.tokens else []))
            finally:
                assert running.stop_cleanly() == 0
    finally:
        control_plane.request("DELETE", f"/api/v1/nodes/{node}")
