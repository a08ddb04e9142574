from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest

from hubkit_testing.controlplane import ControlPlane


@pytest.fixture(scope="session")
def net_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane with the cluster network: kube-proxy, CoreDNS, kube-network-policies."""
    cp = ControlPlane(tmp_path_factory.mktemp("k8s-net"), cluster_network=True).start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture
def net_namespace(net_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = net_plane.create_namespace(f"{base}-{secrets.token_hex(3)}")
    try:
        yield name
    finally:
        net_plane.delete_namespace(name)
