"""The pull pod builder names the configured pull secrets; the real API server admits such a pod."""

from __future__ import annotations

from hubkit.services.image_menu_contract import Placement
from hubkit.services.prepuller.builders import pull_pod
from hubkit.services.prepuller.settings import PrepullerSettings
from hubkit_testing.controlplane import ControlPlane

IMAGE = "registry.example.org/course/private:1"


def test_pull_pods_name_the_pull_secrets_and_are_admitted(
    control_plane: ControlPlane, namespace: str
) -> None:
    settings = PrepullerSettings(namespace=namespace, image_pull_secrets=["hk-pull", "hk-pull-2"])
    pod = pull_pod(settings, "no-such-node", IMAGE, Placement())
    assert pod["spec"]["imagePullSecrets"] == [{"name": "hk-pull"}, {"name": "hk-pull-2"}]
    created = control_plane.request("POST", f"/api/v1/namespaces/{namespace}/pods?dryRun=All", pod)
    assert created["spec"]["imagePullSecrets"] == [{"name": "hk-pull"}, {"name": "hk-pull-2"}]
    plain = pull_pod(PrepullerSettings(namespace=namespace), "no-such-node", IMAGE, Placement())
    assert "imagePullSecrets" not in plain["spec"]
