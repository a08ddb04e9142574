"""pytest fixtures of the hermetic platform (registered through the ``pytest11`` entry point).

- ``control_plane`` (session): etcd, kube-apiserver, controller manager, scheduler, kwok, process kubelet.
- ``namespace``: a fresh namespace per test, deleted afterwards; ``kubeconfig``: a kubeconfig for it.
- ``hub_factory``: start real JupyterHubs (with configurable-http-proxy); all stopped after the test.
- ``kube_hub``: a hub whose stock KubeSpawner spawns into the test's namespace.
- ``ldap_server`` (session), ``browser`` (session) and ``page``: see ldap.py and browser.py.
- ``planet_express`` (module): slapd with ldapauthenticator's CI directory, see planet_express.py.
- ``postgres_server`` (session) and ``postgres_url`` (a fresh database per test): see postgres.py.

Every test that starts a real JupyterHub is marked ``hub`` at collection; ``--hub-tests-only`` runs only
those (the second Python set of ``make test``, see hub_tests.py).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .browser import browser, page
from .controlplane import ControlPlane
from .hub import Hub, HubOptions
from .hub_tests import pytest_addoption, pytest_collection_modifyitems, pytest_configure
from .kubespawner_config import kubespawner_config
from .ldap import ldap_server
from .planet_express import planet_express
from .postgres import postgres_server, postgres_url

__all__ = [
    "browser",
    "control_plane",
    "hub_factory",
    "kube_hub",
    "kubeconfig",
    "ldap_server",
    "namespace",
    "page",
    "planet_express",
    "postgres_server",
    "postgres_url",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
]

HubFactory = Callable[..., Hub]


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(tmp_path_factory.mktemp("k8s")).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    control_plane.create_namespace(name)
    try:
        yield name
    finally:
        control_plane.delete_namespace(name)


@pytest.fixture
def kubeconfig(control_plane: ControlPlane, namespace: str) -> Path:
    """An admin kubeconfig whose current context is the test's namespace."""
    return control_plane.kubeconfig("admin", namespace)


@pytest.fixture
def hub_factory(tmp_path: Path) -> Iterator[HubFactory]:
    hubs: list[Hub] = []

    def make(config: str = "", hub_ip: str = "127.0.0.1", env: dict[str, str] | None = None) -> Hub:
        workdir = tmp_path / f"hub{len(hubs)}"
        hub = Hub(HubOptions(workdir=workdir, config=config, hub_ip=hub_ip, env=env or {}))
        hubs.append(hub)
        return hub.start()

    try:
        yield make
    finally:
        for hub in reversed(hubs):
            hub.stop()


@pytest.fixture
def kube_hub(hub_factory: HubFactory, control_plane: ControlPlane, namespace: str) -> Hub:
    """A hub with stock KubeSpawner spawning into ``namespace`` on the process-kubelet node."""
    return hub_factory(
        config=kubespawner_config(control_plane, namespace),
        hub_ip=control_plane.gateway,
        env={"KUBECONFIG": str(control_plane.admin_kubeconfig)},
    )
