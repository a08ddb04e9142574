"""Pure builders: merge rules, NSS files, GPU overrides and capacity, event wording, the form."""

from __future__ import annotations

from typing import Any

from hubkit.spawner.events import describe_event, image_sizes
from hubkit.spawner.form import render_form
from hubkit.spawner.gpu import GpuRequest, availability_text, gpu_capacity, gpu_override
from hubkit.spawner.identity import Identity
from hubkit.spawner.nss import NssInput, group_text, passwd_text
from hubkit.spawner.overrides import merge_trait
from hubkit.spawner.profiles import initialize_profiles, visible_profiles


def test_dicts_merge_recursively_and_none_deletes() -> None:
    base = {"A": "1", "nested": {"x": 1, "y": 2}}
    assert merge_trait("environment", base, {"B": "2", "nested": {"y": None, "z": 3}}) == {
        "A": "1",
        "B": "2",
        "nested": {"x": 1, "z": 3},
    }
    assert base == {"A": "1", "nested": {"x": 1, "y": 2}}, "the configured value is never mutated"


def test_named_lists_merge_by_key() -> None:
    volumes = [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]
    assert merge_trait("volumes", volumes, [{"name": "b", "configMap": {"name": "x"}}, {"name": "c"}]) == [
        {"name": "a", "emptyDir": {}},
        {"name": "b", "configMap": {"name": "x"}},
        {"name": "c"},
    ]
    mounts = [{"name": "a", "mountPath": "/data"}]
    assert merge_trait("volume_mounts", mounts, [{"name": "b", "mountPath": "/data"}]) == [
        {"name": "b", "mountPath": "/data"}
    ]
    tol = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    merged = merge_trait(
        "tolerations", tol, [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]
    )
    assert merged == [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]
    inits = [{"name": "fix", "image": "a"}]
    assert [c["name"] for c in merge_trait("init_containers", inits, [{"name": "more", "image": "b"}])] == [
        "fix",
        "more",
    ]
    container = {"env": [{"name": "A", "value": "1"}], "workingDir": "/w"}
    assert merge_trait("extra_container_config", container, {"env": [{"name": "A", "value": "2"}]}) == {
        "env": [{"name": "A", "value": "2"}],
        "workingDir": "/w",
    }


def test_other_values_replace() -> None:
    assert merge_trait("image", "a:1", "b:2") == "b:2"
    assert merge_trait("cmd", ["a"], ["b"]) == ["b"]


IDENT = Identity(key="ldap:jdoe", uid=5001, gid=5001, home="ldap-jdoe-1234abcd", posix_groups={"staff": 6000})


def _nss(**kw: Any) -> NssInput:
    base: dict[str, Any] = {
        "name": "n",
        "namespace": "ns",
        "username": "jdoe",
        "identity": IDENT,
        "home_path": "/home/jovyan",
        "shell": "/bin/bash",
        "base_passwd": ["root:x:0:0:root:/root:/bin/sh", "jovyan:x:5001:100::/home/jovyan:/bin/bash"],
        "base_group": ["root:x:0:", "users:x:100:", "staff:x:50:"],
        "labels": {},
    }
    return NssInput(**(base | kw))


def test_passwd_keeps_base_entries_but_never_two_owners_of_the_uid() -> None:
    assert passwd_text(_nss()) == (
        "root:x:0:0:root:/root:/bin/sh\njdoe:x:5001:5001:ldap_jdoe:/home/jovyan:/bin/bash\n"
    )


def test_group_lists_user_groups_and_replaces_clashing_names() -> None:
    assert group_text(_nss()) == "root:x:0:\nusers:x:100:\njdoe:x:5001:\nstaff:x:6000:jdoe\n"


A100 = GpuRequest(count=1, product="NVIDIA-A100-SXM4-40GB", name="A100")


def _node(name: str, gpus: int, product: str, unschedulable: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"nvidia.com/gpu.product": product}},
        "spec": {"unschedulable": unschedulable},
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)}},
    }


def _pod(node: str, gpus: int, phase: str = "Running") -> dict[str, Any]:
    return {
        "spec": {"nodeName": node, "containers": [{"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": {"phase": phase},
    }


def test_gpu_capacity_counts_matching_schedulable_nodes_minus_running_pods() -> None:
    nodes = [
        _node("a", 4, A100.product),
        _node("b", 8, "T4"),
        _node("c", 4, A100.product, unschedulable=True),
    ]
    pods = [_pod("a", 1), _pod("a", 2), _pod("a", 1, "Succeeded"), _pod("b", 8), _pod("c", 1)]
    cap = gpu_capacity(A100, nodes, pods)
    assert (cap.total, cap.free) == (4, 1)
    assert availability_text(A100, cap) == ("1 of 4 A100 GPUs free.", True)
    full = gpu_capacity(A100, nodes, [*pods, _pod("a", 1)])
    assert availability_text(A100, full) == ("All 4 A100 GPUs are in use; try again later.", False)


def test_gpu_override_requests_mig_resources_and_sizes_shm() -> None:
    mig = GpuRequest(count=2, resource="nvidia.com/mig-1g.10gb", shm_size="4Gi")
    override = gpu_override(mig)
    assert override["extra_resource_limits"] == {"nvidia.com/mig-1g.10gb": "2"}
    assert override["volumes"] == [
        {"name": "hubkit-dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "4Gi"}}
    ]
    assert override["volume_mounts"] == [{"name": "hubkit-dshm", "mountPath": "/dev/shm"}]
    assert "node_selector" not in override
    assert gpu_override(A100)["node_selector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}


def test_events_are_told_in_plain_words() -> None:
    full = (
        "0/4 nodes are available: 1 Insufficient nvidia.com/gpu, 3 node(s) didn't match Pod's node affinity."
    )
    assert describe_event({"reason": "FailedScheduling", "message": full}) == (
        "Waiting for a GPU: every GPU of this type is in use right now."
    )
    cpu = "0/3 nodes are available: 3 Insufficient cpu."
    assert describe_event({"reason": "FailedScheduling", "message": cpu}).startswith("Waiting for a seat")  # type: ignore[union-attr]
    assert describe_event({"reason": "TriggeredScaleUp", "message": "pod triggered scale-up"}).startswith(  # type: ignore[union-attr]
        "Waiting for a new node"
    )
    pulling = {"reason": "Pulling", "message": 'Pulling image "jupyter/scipy-notebook:2024"'}
    assert describe_event(pulling, {"jupyter/scipy-notebook:2024": 1_850_000_000}) == (
        "Pulling the image jupyter/scipy-notebook:2024 (1.9 GB)."
    )
    pulled = {
        "reason": "Pulled",
        "message": 'Successfully pulled image "x/y:1" in 3.2s (3.2s including waiting). '
        "Image size: 52428800 bytes.",
    }
    assert describe_event(pulled) == "Pulled the image x/y:1 (52.4 MB, took 3.2s)."
    assert describe_event({"reason": "SandboxChanged", "message": "..."}) is None


def test_form_preselects_last_choice_and_escapes_template_syntax() -> None:
    profiles = initialize_profiles(
        [
            {"display_name": "CPU", "slug": "cpu"},
            {
                "display_name": "Custom",
                "slug": "custom",
                "kubespawner_override": {"cpu_limit": 2, "mem_limit": "4G"},
                "profile_options": {
                    "image": {
                        "choices": {"a": {"display_name": "A"}, "b": {"display_name": "B"}},
                        "unlisted_choice": {"enabled": True},
                    }
                },
            },
        ]
    )
    last = {"profile": "custom", "image--unlisted-choice": "{{ 7*7 }}<script>"}
    html = render_form(visible_profiles(profiles, []), last, {})
    assert 'value="custom" checked' in html
    assert 'value="cpu" checked' not in html
    assert "2 CPU, 4G memory" in html
    assert "{{" not in html
    assert "<script>" not in html
    assert "&#123;&#123; 7*7 &#125;&#125;&lt;script&gt;" in html


def test_image_sizes_come_from_node_status() -> None:
    nodes = [
        {
            "status": {
                "images": [{"names": ["jupyter/scipy-notebook:2024", "sha256:ab"], "sizeBytes": 1850000000}]
            }
        },
        {"status": {}},
    ]
    sizes = image_sizes(nodes)
    assert sizes["jupyter/scipy-notebook:2024"] == 1850000000
    pulling = {"reason": "Pulling", "message": 'Pulling image "jupyter/scipy-notebook:2024"'}
    assert describe_event(pulling, sizes) == "Pulling the image jupyter/scipy-notebook:2024 (1.9 GB)."
    assert describe_event(pulling, {}) == "Pulling the image jupyter/scipy-notebook:2024."


def test_gpu_and_registry_blocks_are_validated_at_load() -> None:
    import pytest

    from hubkit.spawner.exceptions import ConfigError
    from hubkit.spawner.image_menu import parse_registry

    for gpu in ({"count": 0}, {"count": "2"}, {"colour": "green"}, "A100"):
        with pytest.raises(ConfigError):
            initialize_profiles([{"display_name": "g", "gpu": gpu}])
    bad_blocks: list[dict[str, Any]] = [
        {"url": "http://r"},
        {"url": "http://r", "repository": "x", "newest": 0},
        {"url": "http://r", "repository": "x", "tag_pattern": "("},
        {"url": "http://r", "repository": "x", "extra": 1},
    ]
    for block in bad_blocks:
        with pytest.raises(ConfigError):
            parse_registry(block, "p/image")
    assert parse_registry({"url": "https://reg.example.org/", "repository": "a/b"}, "p").image == (
        "reg.example.org/a/b"
    )
