"""The spawner's side of the prepuller contract (pure): the menu it publishes and the form's hints.

The hub publishes every image a user of it can start in the ``hubkit-image-menu`` ConfigMap
(``hubkit.services.image_menu_contract``). Profiles are read as a spawn would apply them: the spawner's own
``node_selector``/``tolerations``/extended resources, then a profile's ``gpu`` block, then its
``kubespawner_override`` (HubKit's merge rules), then an option choice's override (the contract's rules).
``unlisted_choice`` values cannot be enumerated and are not in the menu; a registry-backed option
contributes the tags it currently lists (except the older tags of a category, which it lists
as not prepulled). Override values that are callables are left out: they are
evaluated per spawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubkit.services.image_menu_contract import configmap_for, menu_from_profile_list, normalize_image

from .gpu import gpu_override, parse_gpu
from .overrides import merge_trait
from .profiles import Profile

# The traits that decide where a pod may run, and which image it runs.
PLACEMENT_KEYS = (
    "image",
    "node_selector",
    "tolerations",
    "extra_resource_limits",
    "extra_resource_guarantees",
)


@dataclass(frozen=True)
class MenuSource:
    """What the published menu is built from (the spawner's configuration, not a user's view)."""

    profiles: Sequence[Profile]  # initialized, registry menus expanded, before access rules
    default_image: str
    base: Mapping[str, Any]  # the spawner's configured PLACEMENT_KEYS values
    hub_name: str
    namespace: str
    extra_images: Sequence[str] = field(default_factory=tuple)


def _layer(target: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key in PLACEMENT_KEYS:
        value = layer.get(key)
        if value is None or callable(value):
            continue
        target[key] = merge_trait(key, target[key], value) if key in target else value


def _without_deleted(value: Any) -> Any:
    """A merged placement value with the ``None`` (delete) markers of dicts removed."""
    if isinstance(value, dict):
        return {k: _without_deleted(v) for k, v in value.items() if v is not None}
    return value


def _choice_override(choice: Mapping[str, Any]) -> dict[str, Any]:
    override = choice.get("kubespawner_override") or {}
    return {k: override[k] for k in PLACEMENT_KEYS if k in override and not callable(override[k])}


def contract_profiles(profiles: Sequence[Profile], base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Profiles in the contract's input format, each profile override already merged over ``base``."""
    out: list[dict[str, Any]] = []
    for profile in profiles:
        merged: dict[str, Any] = {}
        _layer(merged, base)
        gpu = parse_gpu(profile.get("gpu"), f"profile {profile.get('slug')!r}")
        if gpu is not None:
            _layer(merged, gpu_override(gpu))
        _layer(merged, profile.get("kubespawner_override") or {})
        options = {
            name: {
                "choices": {
                    slug: {"kubespawner_override": _choice_override(choice)}
                    for slug, choice in (option.get("choices") or {}).items()
                    if choice.get("prepull", True)  # a registry menu's older tags are not prepulled
                }
            }
            for name, option in (profile.get("profile_options") or {}).items()
        }
        out.append(
            {
                "display_name": profile.get("display_name", ""),
                "slug": profile.get("slug", ""),
                "kubespawner_override": {k: _without_deleted(v) for k, v in merged.items()},
                "profile_options": options,
            }
        )
    return out


def menu_namespace(configured: str, spawner_namespace: str, hub_namespace: str | None) -> str:
    """The menu's namespace: as configured, else the hub's own (user namespaces on), else the spawner's."""
    return configured or hub_namespace or spawner_namespace


def menu_configmap(source: MenuSource) -> dict[str, Any]:
    """The ``hubkit-image-menu`` ConfigMap of the hub (raises ``ImageMenuError`` for a bad image name)."""
    profiles = list(source.profiles) or [{"display_name": "default", "slug": "default"}]
    menu = menu_from_profile_list(
        contract_profiles(profiles, source.base), source.extra_images, default_image=source.default_image
    )
    return configmap_for(menu, source.hub_name, namespace=source.namespace)


@dataclass(frozen=True)
class SlowImages:
    """Which menu entries start with an image some eligible node lacks ("first start may take a while")."""

    profiles: frozenset[str] = frozenset()  # profile slugs whose one image is slow
    choices: frozenset[tuple[str, str, str]] = frozenset()  # (profile, option, choice) with a slow image

    def __bool__(self) -> bool:
        return bool(self.profiles or self.choices)


def _image_of(override: Mapping[str, Any]) -> str:
    image = override.get("image")
    return image if isinstance(image, str) else ""


def slow_images(
    profiles: Sequence[Profile], default_image: str, not_everywhere: frozenset[str]
) -> SlowImages:
    """Mark the profiles and option choices whose image is in ``not_everywhere`` (normalised names).

    A choice that sets an image is marked by that image; the other choices of that option by the
    profile's image. A profile whose options never set an image is marked as a whole.
    """
    if not not_everywhere:
        return SlowImages()

    def slow(image: str) -> bool:
        return bool(image) and normalize_image(image) in not_everywhere

    marked_profiles: set[str] = set()
    marked_choices: set[tuple[str, str, str]] = set()
    for profile in profiles:
        slug = str(profile.get("slug", ""))
        profile_image = _image_of(profile.get("kubespawner_override") or {}) or default_image
        image_options = False
        for name, option in (profile.get("profile_options") or {}).items():
            choices = option.get("choices") or {}
            if not any(_image_of(c.get("kubespawner_override") or {}) for c in choices.values()):
                continue
            image_options = True
            for choice_slug, choice in choices.items():
                if slow(_image_of(choice.get("kubespawner_override") or {}) or profile_image):
                    marked_choices.add((slug, name, choice_slug))
        if not image_options and slow(profile_image):
            marked_profiles.add(slug)
    return SlowImages(frozenset(marked_profiles), frozenset(marked_choices))
