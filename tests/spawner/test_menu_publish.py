"""HubKitSpawner publishes its image menu for the prepuller, on the real API server through a real hub."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubkit.services.image_menu_contract import (
    CONFIGMAP_NAME,
    HUB_LABEL,
    MENU_LABEL,
    Placement,
    Toleration,
    menu_from_configmap,
)
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub
from hubkit_testing.kubespawner_config import SINGLEUSER_IMAGE, kubespawner_config
from hubkit_testing.registry import RegistryServer
from hubkit_testing.waiting import eventually

from .conftest import (
    INSTRUCTOR,
    STUDENT,
    HubMaker,
    hub_log,
    identity_authenticator_config,
    show_form,
    z2jh_hub_kubeconfig,
)

GRADER = "registry.example.org/course/grader:1"
TORCH = "registry.example.org/course/torch:3"
RESEARCH = "registry.example.org/lab/research:7"
DEDICATED = {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user", "effect": "NoSchedule"}


def course_profiles(registry: RegistryServer, repo: str) -> list[dict[str, Any]]:
    """A course profile with choices (one instructor-only), an instructor-only GPU one, a registry menu."""
    return [
        {
            "display_name": "Course",
            "slug": "course",
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        "base": {"display_name": "Base", "kubespawner_override": {}},
                        "grader": {
                            "display_name": "Grader",
                            "allowed_groups": ["course:*:instructor"],
                            "kubespawner_override": {"image": GRADER},
                        },
                    },
                }
            },
        },
        {
            "display_name": "GPU",
            "slug": "gpu",
            "allowed_groups": ["course:*:instructor"],
            "gpu": {"count": 1, "product": "Tesla-T4", "name": "T4"},
            "kubespawner_override": {
                "image": TORCH,
                "node_selector": {"hubkit.dev/pool-class": None, "hubkit.dev/pool": "gpu"},
            },
        },
        {
            "display_name": "Pick an image",
            "slug": "images",
            "profile_options": {
                "tag": {
                    "registry": {"url": registry.url, "repository": repo, "newest": 2},
                    "unlisted_choice": {"enabled": True},
                }
            },
        },
    ]


def menu_config(profiles_file: Path, extra: str = "") -> str:
    """Profiles read from a file on every menu build (a callable profile_list), publishing every second."""
    return f"""
import json, pathlib
c.JupyterHub.log_level = "DEBUG"
c.HubKitSpawner.image_menu_publish_interval = 1
c.HubKitSpawner.image_menu_hub_name = "physics"
c.HubKitSpawner.prepull_extra_images = ["busybox:1.36"]
c.HubKitSpawner.registry_cache_ttl = 0.2
c.HubKitSpawner.profile_list = lambda spawner: json.loads(pathlib.Path({str(profiles_file)!r}).read_text())
{extra}
"""


def read_menu(cp: ControlPlane, namespace: str) -> dict[str, Any] | None:
    for cm in cp.request("GET", f"/api/v1/namespaces/{namespace}/configmaps")["items"]:
        if cm["metadata"]["name"] == CONFIGMAP_NAME:
            return dict(cm)
    return None


async def test_menu_has_every_image_with_placements_and_is_written_only_on_change(
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    registry: RegistryServer,
    tmp_path: Path,
) -> None:
    ns = restricted_namespace
    repo = f"course/menu-{secrets.token_hex(3)}"
    for tag in ("1.0", "1.1"):
        registry.push_image(repo, tag)
    tagged = f"{registry.host}/{repo}"
    profiles = course_profiles(registry, repo)
    profiles_file = tmp_path / "profiles.json"
    profiles_file.write_text(json.dumps(profiles))
    # Spawner-wide placement that every profile's placement starts from (no spawn happens here).
    base = f"""
c.KubeSpawner.node_selector = {{"hubkit.dev/pool-class": "user"}}
c.KubeSpawner.tolerations = [{DEDICATED!r}]
"""
    hub = hubkit_hub(menu_config(profiles_file, base))

    # A student's form view publishes the whole menu, the instructor-only choices and profiles too.
    form = await show_form(hub, "student")
    assert "Grader" not in form
    cm = await eventually(lambda: read_menu(control_plane, ns), what="the published menu")
    assert cm["metadata"]["labels"][MENU_LABEL] == "true"
    assert cm["metadata"]["labels"][HUB_LABEL] == "physics"
    menu = {e.image: e for e in menu_from_configmap(cm).images}
    assert set(menu) == {SINGLEUSER_IMAGE, GRADER, TORCH, f"{tagged}:1.1", f"{tagged}:1.0", "busybox:1.36"}
    cpu = Placement(
        node_selector={"hubkit.dev/pool-class": "user"}, tolerations=(Toleration.model_validate(DEDICATED),)
    )
    for image in (SINGLEUSER_IMAGE, GRADER, f"{tagged}:1.1", f"{tagged}:1.0"):
        assert menu[image].placements == (cpu,), image
    assert menu[GRADER].profiles == ("course",)
    assert menu[f"{tagged}:1.0"].profiles == ("images",)
    assert menu[TORCH].profiles == ("gpu",)
    assert menu[TORCH].placements == (
        Placement(
            node_selector={"hubkit.dev/pool": "gpu", "nvidia.com/gpu.product": "Tesla-T4"},
            tolerations=(
                Toleration.model_validate(DEDICATED),
                Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
            ),
            resources=("nvidia.com/gpu",),
        ),
    )
    assert menu["busybox:1.36"].placements == (Placement(),)
    version = cm["metadata"]["resourceVersion"]

    # Another view after the interval publishes again, finds nothing changed and writes nothing.
    up_to_date = f"Image menu {ns}/{CONFIGMAP_NAME} is up to date"
    await asyncio.sleep(1.1)
    await show_form(hub, "instructor")
    await eventually(lambda: up_to_date in hub_log(hub), what="an unchanged publish")
    assert read_menu(control_plane, ns)["metadata"]["resourceVersion"] == version  # type: ignore[index]
    assert hub_log(hub).count(f"Image menu {ns}/{CONFIGMAP_NAME} created") == 1

    # The admin adds a profile: the next publish replaces the object.
    profiles.append(
        {"display_name": "Research", "slug": "research", "kubespawner_override": {"image": RESEARCH}}
    )
    profiles_file.write_text(json.dumps(profiles))
    await asyncio.sleep(1.1)
    await show_form(hub, "student")

    def replaced() -> dict[str, Any] | None:
        cm = read_menu(control_plane, ns)
        return cm if cm and cm["metadata"]["resourceVersion"] != version else None

    cm = await eventually(replaced, what="the menu with the new profile")
    assert RESEARCH in {e.image for e in menu_from_configmap(cm).images}
    version = cm["metadata"]["resourceVersion"]

    # The registry gets a newer tag: the menu follows what the form lists (the newest two).
    registry.push_image(repo, "1.2")
    await asyncio.sleep(1.1)
    await show_form(hub, "student")
    cm = await eventually(replaced, what="the menu with the new tag")
    images = {e.image for e in menu_from_configmap(cm).images}
    assert {f"{tagged}:1.2", f"{tagged}:1.1"} <= images
    assert f"{tagged}:1.0" not in images
    assert "Cannot publish" not in hub_log(hub)


async def test_a_hub_that_may_not_write_configmaps_still_spawns_and_logs_why(
    hub_factory: Callable[..., Hub],
    control_plane: ControlPlane,
    restricted_namespace: str,
    registry: RegistryServer,
    tmp_path: Path,
) -> None:
    ns = restricted_namespace
    kubeconfig = z2jh_hub_kubeconfig(control_plane, ns, tmp_path)
    repo = f"course/rbac-{secrets.token_hex(3)}"
    registry.push_image(repo, "1.0")
    profiles_file = tmp_path / "profiles.json"
    profiles_file.write_text(json.dumps(course_profiles(registry, repo)))
    config = kubespawner_config(control_plane, ns, "hubkit")
    config += identity_authenticator_config({"student": STUDENT, "instructor": INSTRUCTOR})
    # The NSS ConfigMap needs ConfigMap rights too: off, so only publishing lacks them. The spawn is
    # what publishes here (no form is shown).
    config += menu_config(profiles_file, "c.HubKitSpawner.nss_enabled = False")
    hub = hub_factory(
        config=config,
        hub_ip=control_plane.gateway,
        env={"KUBECONFIG": str(kubeconfig), "JUPYTERHUB_CRYPT_KEY": "7f" * 32},
    )
    client = await hub.login("student")
    await client.aclose()

    await hub.start_server("student", {"profile": "course", "image": "base"}, timeout=120)
    pod = control_plane.request("GET", f"/api/v1/namespaces/{ns}/pods/jupyter-student")
    assert pod["status"]["phase"] == "Running"
    warning = f"Cannot publish the image menu {ns}/{CONFIGMAP_NAME} (hub physics) for the prepuller"
    line = await eventually(
        lambda: next((x for x in hub_log(hub).splitlines() if warning in x), None), what="the warning"
    )
    assert "[W " in line
    assert "403" in line
    assert read_menu(control_plane, ns) is None
    await hub.stop_server("student")
