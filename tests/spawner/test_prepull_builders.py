"""The spawner's side of the prepuller contract without a cluster: the published menu, the form's marks."""

from __future__ import annotations

from typing import Any

import pytest

from hubkit.services.image_menu_contract import (
    CONFIGMAP_NAME,
    HUB_LABEL,
    MENU_LABEL,
    ImageMenuError,
    Placement,
    Toleration,
    menu_from_configmap,
)
from hubkit.spawner.form import render_form
from hubkit.spawner.prepull import MenuSource, SlowImages, menu_configmap, menu_namespace, slow_images
from hubkit.spawner.profiles import initialize_profiles

DEFAULT = "quay.io/jupyterhub/singleuser:5.3"
GRADER = "registry.example.org/course/grader:1"
TORCH = "registry.example.org/course/torch:3"
DEDICATED = {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}
BASE: dict[str, Any] = {
    "node_selector": {"hubkit.dev/pool-class": "user"},
    "tolerations": [DEDICATED],
    "extra_resource_limits": {},
    "extra_resource_guarantees": {},
}


def _profiles() -> list[dict[str, Any]]:
    return initialize_profiles(
        [
            {
                "display_name": "Course",
                "slug": "course",
                "profile_options": {
                    "image": {
                        "choices": {
                            "base": {"display_name": "Base", "kubespawner_override": {}},
                            "grader": {
                                "display_name": "Grader",
                                "allowed_groups": [],
                                "kubespawner_override": {"image": GRADER},
                            },
                        }
                    },
                    "size": {"choices": {"s": {"kubespawner_override": {"mem_limit": "1G"}}}},
                },
            },
            {
                "display_name": "GPU",
                "slug": "gpu",
                "gpu": {"count": 1, "product": "Tesla-T4"},
                "kubespawner_override": {
                    "image": TORCH,
                    "node_selector": {"hubkit.dev/pool-class": None, "hubkit.dev/pool": "gpu"},
                    "environment": lambda spawner: {"NOT": "published"},
                },
            },
        ]
    )


def _source(**changes: Any) -> MenuSource:
    fields: dict[str, Any] = {
        "profiles": _profiles(),
        "default_image": DEFAULT,
        "base": BASE,
        "hub_name": "physics",
        "namespace": "hub-a",
        "extra_images": ("busybox:1.36",),
    }
    return MenuSource(**(fields | changes))


def test_the_menu_lists_every_choice_with_the_placement_a_spawn_would_get() -> None:
    cm = menu_configmap(_source())
    assert cm["metadata"]["name"] == CONFIGMAP_NAME
    assert cm["metadata"]["namespace"] == "hub-a"
    assert cm["metadata"]["labels"][MENU_LABEL] == "true"
    assert cm["metadata"]["labels"][HUB_LABEL] == "physics"
    menu = {e.image: e for e in menu_from_configmap(cm).images}
    assert set(menu) == {DEFAULT, GRADER, TORCH, "busybox:1.36"}, "the grader choice no one may use is in"
    cpu = Placement(
        node_selector={"hubkit.dev/pool-class": "user"}, tolerations=(Toleration.model_validate(DEDICATED),)
    )
    assert menu[DEFAULT].placements == (cpu,)
    assert menu[GRADER].placements == (cpu,)
    assert menu[DEFAULT].profiles == ("course",)
    gpu = Placement(
        node_selector={"hubkit.dev/pool": "gpu", "nvidia.com/gpu.product": "Tesla-T4"},
        tolerations=(
            Toleration.model_validate(DEDICATED),
            Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
        ),
        resources=("nvidia.com/gpu",),
    )
    assert menu[TORCH].placements == (gpu,), "the gpu block and the override's None both apply"
    assert menu["busybox:1.36"].placements == (Placement(),)


def test_no_profiles_publish_the_spawner_image_and_bad_names_are_refused() -> None:
    menu = menu_from_configmap(menu_configmap(_source(profiles=[], extra_images=())))
    assert [(e.image, e.profiles) for e in menu.images] == [(DEFAULT, ("default",))]
    with pytest.raises(ImageMenuError, match="not an image reference"):
        menu_configmap(_source(extra_images=("Not An Image",)))


def test_one_menu_per_hub_also_with_user_namespaces() -> None:
    # The spawner's namespace normally; with user namespaces the hub's own, never jhub-alice's.
    assert menu_namespace("", "physics", None) == "physics"
    assert menu_namespace("", "jhub-alice", "jhub") == "jhub"
    assert menu_namespace("menus", "jhub-alice", "jhub") == "menus"  # configured wins
    assert menu_namespace("menus", "physics", None) == "menus"


def test_marks_follow_the_images_that_are_not_everywhere() -> None:
    profiles = _profiles()
    lacking = frozenset({"registry.example.org/course/grader:1", "docker.io/library/unrelated:latest"})
    assert slow_images(profiles, DEFAULT, lacking) == SlowImages(
        profiles=frozenset(), choices=frozenset({("course", "image", "grader")})
    )
    # The spawner's image is written short; the prepuller's status has it normalised.
    everywhere_but_default = frozenset({"quay.io/jupyterhub/singleuser:5.3", TORCH})
    marks = slow_images(profiles, DEFAULT, everywhere_but_default)
    assert marks.choices == {("course", "image", "base")}
    assert marks.profiles == {"gpu"}
    html = render_form(profiles, {}, {}, marks)
    assert html.count("first start may take a few minutes") == 1
    assert ">Base (first start may take a few minutes)</option>" in html
    assert html.count('<p class="hubkit-prepull">First start may take a few minutes.</p>') == 1
    assert "first start" not in render_form(profiles, {}, {}, SlowImages()).lower()
