"""The spawner → prepuller image-menu contract: pure functions, no cluster."""

from __future__ import annotations

import json

import pytest

from hubkit.services.image_menu_contract import (
    CONFIGMAP_KEY,
    CONFIGMAP_NAME,
    MENU_LABEL,
    ImageMenuError,
    Placement,
    Toleration,
    configmap_for,
    images_not_everywhere,
    menu_from_configmap,
    menu_from_profile_list,
)

GPU_TOL = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
PROFILES = [
    {
        "display_name": "Python (CPU)",
        "kubespawner_override": {"image": "quay.io/jupyter/scipy-notebook:2025-01-01"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "scipy": {"display_name": "SciPy", "kubespawner_override": {}},
                    "r": {
                        "display_name": "R",
                        "kubespawner_override": {"image": "quay.io/jupyter/r-notebook:2025-01-01"},
                    },
                },
            }
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "kubespawner_override": {
            "image": "nvcr.io/nvidia/pytorch:25.01",
            "node_selector": {"pool": "gpu"},
            "tolerations": [GPU_TOL],
            "extra_resource_limits": {"nvidia.com/gpu": "1"},
        },
    },
    {
        "display_name": "Course images",
        "slug": "course",
        "kubespawner_override": {"node_selector": {"pool": "cpu"}},
        "profile_options": {"tag": {"display_name": "Tag", "choices": {}}},
    },
]


def test_menu_lists_profile_choice_registry_and_extra_images_with_their_placements() -> None:
    menu = menu_from_profile_list(
        PROFILES,
        ["busybox:1.36"],
        base={"node_selector": {"hub": "a"}},
        registry_images={
            "course/tag": ["registry.example.org/course/lab:v2", "registry.example.org/course/lab:v1"]
        },
    )
    by_image = {e.image: e for e in menu.images}
    assert set(by_image) == {
        "quay.io/jupyter/scipy-notebook:2025-01-01",
        "quay.io/jupyter/r-notebook:2025-01-01",
        "nvcr.io/nvidia/pytorch:25.01",
        "registry.example.org/course/lab:v2",
        "registry.example.org/course/lab:v1",
        "busybox:1.36",
    }
    gpu = by_image["nvcr.io/nvidia/pytorch:25.01"]
    assert gpu.profiles == ("gpu",)
    assert gpu.placements == (
        Placement(
            node_selector={"hub": "a", "pool": "gpu"},
            tolerations=(Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),),
            resources=("nvidia.com/gpu",),
        ),
    )
    assert by_image["quay.io/jupyter/r-notebook:2025-01-01"].profiles == ("python-cpu",)
    lab = by_image["registry.example.org/course/lab:v1"]
    assert lab.placements[0].node_selector == {"hub": "a", "pool": "cpu"}
    assert by_image["busybox:1.36"].placements == (Placement(),)


def test_configmap_round_trips_and_carries_the_contract_labels() -> None:
    menu = menu_from_profile_list(PROFILES, [])
    cm = configmap_for(menu, "physics-101", namespace="hub-physics")
    assert cm["metadata"]["name"] == CONFIGMAP_NAME
    assert cm["metadata"]["namespace"] == "hub-physics"
    assert cm["metadata"]["labels"][MENU_LABEL] == "true"
    assert json.loads(cm["data"][CONFIGMAP_KEY])["version"] == 1
    assert menu_from_configmap(cm) == menu


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "has no 'menu.json' key"),
        ({CONFIGMAP_KEY: "{not json"}, "is not a valid image menu"),
        ({CONFIGMAP_KEY: json.dumps({"version": 2, "images": []})}, "is not a valid image menu"),
        ({CONFIGMAP_KEY: json.dumps({"images": [{"image": "", "placements": []}]})}, "is not a valid"),
        ({CONFIGMAP_KEY: json.dumps({"images": [], "surprise": 1})}, "is not a valid image menu"),
    ],
)
def test_hostile_published_menus_are_refused_with_one_sentence(data: dict[str, str], message: str) -> None:
    with pytest.raises(ImageMenuError, match=message) as info:
        menu_from_configmap({"data": data})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "image",
    ["quay.io/Jupyter/base", "busybox:1.36; rm -rf /", "a b", "registry:5000/x:tag:again", "x@sha256:beef"],
)
def test_malformed_image_references_are_refused(image: str) -> None:
    with pytest.raises(ImageMenuError, match="not an image reference"):
        menu_from_profile_list([], [image])
    cm = {"data": {CONFIGMAP_KEY: json.dumps({"images": [{"image": image, "placements": [{}]}]})}}
    with pytest.raises(ImageMenuError, match="is not a valid image menu"):
        menu_from_configmap(cm)


@pytest.mark.parametrize(
    "image",
    [
        "busybox",
        "localhost:5000/course/lab:v1.2_rc-1",
        "nvcr.io/nvidia/pytorch:25.01-py3",
        "quay.io/jupyter/scipy-notebook@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references_are_kept(image: str) -> None:
    assert [e.image for e in menu_from_profile_list([], [image]).images] == [image]


def test_bad_hub_names_and_tolerations_are_refused() -> None:
    with pytest.raises(ImageMenuError, match="not a valid Kubernetes label value"):
        configmap_for(menu_from_profile_list([], []), "../etc")
    bad = [
        {"display_name": "x", "kubespawner_override": {"image": "a", "tolerations": [{"operator": "Maybe"}]}}
    ]
    with pytest.raises(ImageMenuError, match="invalid toleration"):
        menu_from_profile_list(bad, [])


def test_toleration_matching_follows_kubernetes_rules() -> None:
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert Toleration(key="nvidia.com/gpu", operator="Exists").tolerates(taint)
    assert Toleration(key="nvidia.com/gpu", value="present", effect="NoSchedule").tolerates(taint)
    assert not Toleration(key="nvidia.com/gpu", value="absent").tolerates(taint)
    assert not Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoExecute").tolerates(taint)
    assert Toleration(operator="Exists").tolerates(taint)
    assert not Toleration(key="other", operator="Exists").tolerates(taint)


def test_images_not_everywhere_reads_the_prepuller_status_defensively() -> None:
    status = {
        "images": [
            {"image": "a", "on_every_eligible_node": True},
            {"image": "b", "on_every_eligible_node": False},
            {"image": "c"},
            "garbage",
            {"on_every_eligible_node": False},
        ]
    }
    assert images_not_everywhere(status) == {"b", "c"}
    assert images_not_everywhere({}) == frozenset()
