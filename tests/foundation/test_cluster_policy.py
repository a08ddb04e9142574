"""Must-show 2 and 3: PodSecurity admission and priority preemption are the real ones."""

from __future__ import annotations

import json
import secrets
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes_asyncio import client, config

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.nodes import KWOK_TAINT, NodeSpec


def _pod(name: str, **spec: object) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox", **spec}]}}


def test_restricted_namespace_rejects_privileged_pod_with_apiserver_message(
    control_plane: ControlPlane,
) -> None:
    ns = control_plane.create_namespace(
        f"restricted-{secrets.token_hex(3)}", {"pod-security.kubernetes.io/enforce": "restricted"}
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            control_plane.request(
                "POST", f"/api/v1/namespaces/{ns}/pods", _pod("evil", securityContext={"privileged": True})
            )
        assert err.value.code == 403
        status = json.loads(err.value.read())
        assert 'violates PodSecurity "restricted:latest"' in status["message"]
        assert 'privileged (container "c" must not set securityContext.privileged=true)' in status["message"]
        listing = control_plane.request("GET", f"/api/v1/namespaces/{ns}/pods")
        assert listing["items"] == [], "a rejected pod must not exist"
    finally:
        control_plane.delete_namespace(ns)


@pytest.fixture
def small_node(control_plane: ControlPlane) -> Iterator[str]:
    """A dedicated 2-CPU kwok node, so the test owns all of its capacity."""
    name = f"kwok-small-{secrets.token_hex(3)}"
    control_plane.add_kwok_node(NodeSpec(name, cpu="2", memory="4Gi", labels={"hubkit.dev/test": name}))
    try:
        yield name
    finally:
        control_plane.request("DELETE", f"/api/v1/nodes/{name}")


def test_higher_priority_pod_preempts_lower_on_full_node(
    control_plane: ControlPlane, namespace: str, small_node: str
) -> None:
    low, high = f"low-{namespace}", f"high-{namespace}"
    for name, value in ((low, -10), (high, 1000)):
        control_plane.request(
            "POST", "/apis/scheduling.k8s.io/v1/priorityclasses", {"metadata": {"name": name}, "value": value}
        )
    try:
        placement = {
            "nodeSelector": {"hubkit.dev/test": small_node},
            "tolerations": [{**KWOK_TAINT, "operator": "Equal"}],
        }

        def pod(name: str, pc: str) -> dict[str, object]:
            body = _pod(name, resources={"requests": {"cpu": "1500m"}}, command=["sleep", "infinity"])
            body["spec"] |= placement | {"priorityClassName": pc}  # type: ignore[operator]
            return body

        pods = f"/api/v1/namespaces/{namespace}/pods"
        control_plane.request("POST", pods, pod("placeholder", low))
        placeholder = control_plane.wait_for_pod_phase(namespace, "placeholder", {"Running"}, timeout=30)
        assert placeholder["spec"]["nodeName"] == small_node

        control_plane.request("POST", pods, pod("user", high))
        user = control_plane.wait_for_pod_phase(namespace, "user", {"Running"}, timeout=60)
        assert user["spec"]["nodeName"] == small_node
        assert control_plane.wait_for_pod_gone(namespace, "placeholder", timeout=30)
        events = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/events")["items"]
        assert any(
            e["reason"] == "Preempted" and e["involvedObject"]["name"] == "placeholder" for e in events
        )
    finally:
        for name in (low, high):
            control_plane.request("DELETE", f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}")


async def test_namespace_kubeconfig_drives_a_real_client(kubeconfig: Path, namespace: str) -> None:
    """The per-test kubeconfig works with kubernetes_asyncio, defaulting to the test's namespace."""
    api_client = await config.new_client_from_config(config_file=str(kubeconfig))
    async with api_client:
        core = client.CoreV1Api(api_client)
        accounts = await core.list_namespaced_service_account(namespace)
        assert [a.metadata.name for a in accounts.items] == ["default"]
    assert f"namespace: {namespace}" in kubeconfig.read_text()
