"""Fixtures of the spawner tests: a restricted namespace, hub configs with a test identity authenticator."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub
from hubkit_testing.kubespawner_config import kubespawner_config
from hubkit_testing.registry import registry  # noqa: F401  # the fixture, exposed to these tests

CRYPT_KEY = "7f" * 32

STUDENT = {
    "groups": ["course:ds100:student"],
    "hubkit": {
        "key": "lti:canvas:s-1",
        "uid": 20001,
        "gid": 20001,
        "posix_groups": {"ds100": 30100},
        "home": "lti-canvas-s-1-0a3f9c1e",
    },
}
INSTRUCTOR = {
    "groups": ["course:ds100:instructor", "github:my-org:gpu-users"],
    "hubkit": {
        "key": "github:583231",
        "uid": 583231,
        "gid": 583231,
        "posix_groups": {"ds100": 30100, "my-org-gpu-users": 2871009},
        "home": "github-583231-9b1d2f3a",
    },
}


def identity_authenticator_config(identities: dict[str, dict[str, Any]]) -> str:
    """Hub config: a DummyAuthenticator returning auth_state["hubkit"] and groups per user (the contract)."""
    return f"""
from jupyterhub.auth import DummyAuthenticator

HUBKIT_TEST_IDENTITIES = {identities!r}

class IdentityTestAuthenticator(DummyAuthenticator):
    async def authenticate(self, handler, data):
        name = await super().authenticate(handler, data)
        if not name:
            return None
        spec = HUBKIT_TEST_IDENTITIES.get(name, {{}})
        state = {{"hubkit": spec["hubkit"]}} if "hubkit" in spec else {{}}
        return {{"name": name, "auth_state": state, "groups": spec.get("groups", [])}}

c.JupyterHub.authenticator_class = IdentityTestAuthenticator
c.IdentityTestAuthenticator.password = "hubkit"
c.Authenticator.manage_groups = True
c.Authenticator.enable_auth_state = True
c.JupyterHub.default_url = "/hub/home"  # logging in stores auth_state; spawns are the test's to start
"""


HubMaker = Callable[..., Hub]


@pytest.fixture
def restricted_namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace that enforces the "restricted" Pod Security Standard."""
    name = f"hk-spawn-{secrets.token_hex(4)}"
    control_plane.create_namespace(name, {"pod-security.kubernetes.io/enforce": "restricted"})
    try:
        yield name
    finally:
        control_plane.delete_namespace(name)


@pytest.fixture
def hubkit_hub(
    hub_factory: Callable[..., Hub], control_plane: ControlPlane, restricted_namespace: str
) -> HubMaker:
    """Start a hub with HubKitSpawner in the restricted namespace; pass extra config and identities."""

    def make(config: str = "", identities: dict[str, dict[str, Any]] | None = None) -> Hub:
        text = kubespawner_config(control_plane, restricted_namespace, "hubkit")
        text += identity_authenticator_config(identities or {"student": STUDENT, "instructor": INSTRUCTOR})
        return hub_factory(
            config=text + config,
            hub_ip=control_plane.gateway,
            env={"KUBECONFIG": str(control_plane.admin_kubeconfig), "JUPYTERHUB_CRYPT_KEY": CRYPT_KEY},
        )

    return make


def objects_in(cp: ControlPlane, namespace: str) -> dict[str, list[str]]:
    """Names of the pods and ConfigMaps HubKit could have created for users (the cluster's own CA map and
    the hub-wide image menu published for the prepuller excluded)."""
    pods = [p["metadata"]["name"] for p in cp.request("GET", f"/api/v1/namespaces/{namespace}/pods")["items"]]
    cms = [
        c["metadata"]["name"]
        for c in cp.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]
        if c["metadata"]["name"] not in ("kube-root-ca.crt", "hubkit-image-menu")
    ]
    return {"pods": pods, "configmaps": cms}


def hub_log(hub: Hub) -> str:
    return Path(hub.log_path).read_text(errors="replace")


async def show_form(hub: Hub, user: str) -> str:
    """What the user's browser gets for the spawn page (the server-rendered form)."""
    client = await hub.login(user)
    try:
        r = await client.get("/hub/spawn")
        assert r.status_code == 200, r.text[:300]
        return r.text
    finally:
        await client.aclose()


def z2jh_hub_kubeconfig(cp: ControlPlane, namespace: str, workdir: Path) -> Path:
    """A kubeconfig for a hub ServiceAccount with exactly z2jh's hub Role: no ConfigMaps at all."""
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + namespace
    cp.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {"metadata": {"name": "hub"}})
    cp.request(
        "POST",
        f"{rbac}/roles",
        {
            "metadata": {"name": "hub"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "persistentvolumeclaims", "secrets", "services"],
                    "verbs": ["get", "watch", "list", "create", "delete"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "watch", "list"]},
            ],
        },
    )
    cp.request(
        "POST",
        f"{rbac}/rolebindings",
        {
            "metadata": {"name": "hub"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "hub"},
            "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": namespace}],
        },
    )
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    token = cp.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/hub/token", request)
    assert cp.pki is not None
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "hubkit", "cluster": {"server": cp.server, "certificate-authority": str(cp.pki.ca_cert)}}
        ],
        "users": [{"name": "hub", "user": {"token": token["status"]["token"]}}],
        "contexts": [
            {"name": "hub", "context": {"cluster": "hubkit", "user": "hub", "namespace": namespace}}
        ],
        "current-context": "hub",
    }
    path = workdir / "hub.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
