"""One HubKitSpawner, several spawns: each spawn's overrides start from the configuration again."""

from __future__ import annotations

import pytest
from tornado import web
from traitlets.config import Config

from hubkit.spawner.cli import offline_kubeconfig, offline_spawner

from .conftest import INSTRUCTOR


def _config() -> Config:
    c = Config()
    c.KubeSpawner.namespace = "jhub"
    c.KubeSpawner.environment = {"BASE": "1"}
    c.KubeSpawner.tolerations = [
        {"key": "pool", "operator": "Equal", "value": "user", "effect": "NoSchedule"}
    ]
    c.HubKitSpawner.profile_list = [
        {"display_name": "CPU", "slug": "cpu", "default": True},
        {
            "display_name": "GPU",
            "slug": "gpu",
            "gpu": {"count": 2, "product": "NVIDIA-A100-SXM4-40GB", "name": "A100"},
            "kubespawner_override": {"environment": {"TRAINING": "yes"}, "image": "gpu/image:1"},
        },
    ]
    return c


async def test_gpu_settings_never_leak_into_the_next_spawn() -> None:
    with offline_kubeconfig():
        spawner = offline_spawner(_config(), "instructor", INSTRUCTOR["groups"])
    await spawner.run_auth_state_hook({"hubkit": INSTRUCTOR["hubkit"]})
    configured_image = spawner.image

    spawner.user_options = {"profile": "gpu"}
    await spawner.load_user_options()  # e.g. this start then fails: no GPU was free
    assert spawner.extra_resource_limits == {"nvidia.com/gpu": "2"}
    assert spawner.environment == {
        "BASE": "1",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
        "TRAINING": "yes",
    }
    assert [t["key"] for t in spawner.tolerations] == ["pool", "nvidia.com/gpu"]
    assert spawner.node_selector == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}

    spawner.user_options = {"profile": "cpu"}
    await spawner.load_user_options()
    assert spawner.extra_resource_limits == {}
    assert spawner.extra_resource_guarantees == {}
    assert spawner.environment == {"BASE": "1"}
    assert [t["key"] for t in spawner.tolerations] == ["pool"]
    assert spawner.node_selector == {}
    assert spawner.volumes == []
    assert spawner.image == configured_image
    pod = await spawner.get_pod_manifest()
    assert "nvidia.com/gpu" not in (pod.spec.containers[0].resources.limits or {})


async def test_a_refused_request_leaves_the_previous_state_unapplied() -> None:
    with offline_kubeconfig():
        spawner = offline_spawner(_config(), "student", ["course:ds100:student"])
    await spawner.run_auth_state_hook({"hubkit": INSTRUCTOR["hubkit"]})
    spawner.user_options = {"profile": "gpu"}
    await spawner.load_user_options()
    spawner.user_options = {"profile": "gpu", "shm": "64Gi"}
    with pytest.raises(web.HTTPError) as err:
        await spawner.load_user_options()
    assert err.value.status_code == 400
    assert spawner.extra_resource_limits == {}, "a refused spawn starts from the configuration too"
