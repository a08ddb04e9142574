"""HubKitMultiAuthenticator forwards ``pre_spawn_start`` to the part that owns the user, on real spawns.

Two composed authenticators each prepare their users' servers differently; the pods the hub's KubeSpawner
creates on the hermetic cluster show which part prepared each one.
"""

from __future__ import annotations

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.kubespawner_config import kubespawner_config
from hubkit_testing.pytest_plugin import HubFactory

COMPOSED = """
from jupyterhub.auth import DummyAuthenticator


class StaffAuthenticator(DummyAuthenticator):
    def pre_spawn_start(self, user, spawner):
        spawner.environment["PREPARED_BY"] = "staff"


class CourseAuthenticator(DummyAuthenticator):
    def pre_spawn_start(self, user, spawner):
        spawner.environment["PREPARED_BY"] = "course"


c.JupyterHub.authenticator_class = "hubkit-multi"
c.HubKitMultiAuthenticator.allow_all = True
c.HubKitMultiAuthenticator.authenticators = [
    {"authenticator_class": StaffAuthenticator, "url_prefix": "staff", "username_prefix": "staff-",
     "config": {"password": "hubkit", "allow_all": True}},
    {"authenticator_class": CourseAuthenticator, "url_prefix": "course", "username_prefix": "",
     "config": {"password": "hubkit", "allow_all": True}},
]
"""


def env_of_pod(cp: ControlPlane, namespace: str, user: str) -> dict[str, str]:
    pods = cp.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]
    (pod,) = [p for p in pods if p["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == user]
    container = pod["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


async def test_each_part_prepares_the_servers_of_its_own_users(
    hub_factory: HubFactory, control_plane: ControlPlane, namespace: str
) -> None:
    hub = hub_factory(
        config=kubespawner_config(control_plane, namespace) + COMPOSED,
        hub_ip=control_plane.gateway,
        env={"KUBECONFIG": str(control_plane.admin_kubeconfig)},
    )
    for user in ("staff-ann", "sam"):
        await hub.start_server(user, timeout=120)
    assert env_of_pod(control_plane, namespace, "staff-ann")["PREPARED_BY"] == "staff"
    assert env_of_pod(control_plane, namespace, "sam")["PREPARED_BY"] == "course"
    for user in ("staff-ann", "sam"):
        await hub.stop_server(user)
