"""The image-menu contract between the spawner and the prepuller.

Each hub publishes one ConfigMap in its own namespace:

- name ``hubkit-image-menu``, label ``hubkit.dev/image-menu: "true"`` (and ``hubkit.dev/hub: <hub name>``);
- key ``menu.json``: an :class:`ImageMenu` serialized as JSON.

The menu lists every image a user of that hub can start (profile images, ``profile_options`` choices,
registry-backed menus with their resolved tags, configured extras) and, per image, the placements (node
selector, tolerations, extended resources such as ``nvidia.com/gpu``) of the profiles that use it, so the
prepuller pulls an image only onto nodes where a user pod with that image could actually land.

Everything here is pure: the spawner calls :func:`menu_from_profile_list` and :func:`configmap_for` and
creates or replaces the object; the prepuller calls :func:`menu_from_configmap`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CONFIGMAP_KEY",
    "CONFIGMAP_NAME",
    "HUB_LABEL",
    "MENU_LABEL",
    "ImageEntry",
    "ImageMenu",
    "ImageMenuError",
    "Placement",
    "Toleration",
    "configmap_for",
    "images_not_everywhere",
    "menu_from_configmap",
    "menu_from_profile_list",
    "normalize_image",
    "profile_slug",
]

CONFIGMAP_NAME = "hubkit-image-menu"
CONFIGMAP_KEY = "menu.json"
MENU_LABEL = "hubkit.dev/image-menu"
HUB_LABEL = "hubkit.dev/hub"
# An image reference as container runtimes accept it: [registry[:port]/]repo/path[:tag][@sha256:digest].
IMAGE_REFERENCE = (
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+|/)[a-z0-9]+)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# Extended resources that make a placement need a node that has them (GPU images only to GPU nodes).
EXTENDED_RESOURCE = re.compile(r"^[a-z0-9.-]+/[a-zA-Z0-9._-]+$")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def normalize_image(ref: str) -> str:
    """A canonical reference: ``jupyter/scipy-notebook`` → ``docker.io/jupyter/scipy-notebook:latest``."""
    ref = ref.strip()
    digest = ""
    match = _DIGEST.search(ref)
    if match:
        digest, ref = match.group(0), ref[: match.start()]
    first, _, rest = ref.partition("/")
    if not rest:
        ref = f"docker.io/library/{ref}"
    elif not ("." in first or ":" in first or first == "localhost"):
        ref = f"docker.io/{ref}"
    if ref.startswith("index.docker.io/"):
        ref = "docker.io/" + ref[len("index.docker.io/") :]
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and not digest:
        ref += ":latest"
    return ref + digest


class ImageMenuError(ValueError):
    """A profile list or a published menu that does not follow the contract."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Toleration(_Model):
    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = None

    def tolerates(self, taint: Mapping[str, Any]) -> bool:
        """Kubernetes' toleration-matches-taint rule."""
        if self.effect is not None and self.effect != taint.get("effect"):
            return False
        if self.key is None:  # an empty key with Exists tolerates everything
            return self.operator == "Exists"
        if self.key != taint.get("key"):
            return False
        if self.operator == "Exists":
            return True
        return (self.value or "") == (taint.get("value") or "")


class Placement(_Model):
    """Where pods of one profile (or option choice) may run."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    # Extended resources the profile requests (e.g. "nvidia.com/gpu"): the node must offer them.
    resources: tuple[str, ...] = ()


class ImageEntry(_Model):
    image: str = Field(min_length=1, max_length=512, pattern=IMAGE_REFERENCE)
    placements: tuple[Placement, ...]
    profiles: tuple[str, ...] = ()  # profile slugs (or "extra"), for status pages


class ImageMenu(_Model):
    version: Literal[1] = 1
    images: tuple[ImageEntry, ...] = ()


def profile_slug(profile: Mapping[str, Any]) -> str:
    """The profile's slug as kubespawner derives it: ``slug`` or the display name, slugified."""
    slug = profile.get("slug")
    if isinstance(slug, str) and slug:
        return slug
    name = str(profile.get("display_name", ""))
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "profile"


def _placement(overrides: Sequence[Mapping[str, Any]], base: Placement) -> Placement:
    """Placement after applying overrides in order: selectors merge, tolerations merge by identity."""
    selector = dict(base.node_selector)
    tolerations = list(base.tolerations)
    resources = set(base.resources)
    for override in overrides:
        for key, value in (override.get("node_selector") or {}).items():
            if value is None:
                selector.pop(key, None)
            else:
                selector[str(key)] = str(value)
        for raw in override.get("tolerations") or []:
            try:
                tol = Toleration.model_validate(raw)
            except ValidationError as e:
                raise ImageMenuError(f"invalid toleration {raw!r}: {e.errors()[0]['msg']}") from e
            if tol not in tolerations:
                tolerations.append(tol)
        for field in ("extra_resource_limits", "extra_resource_guarantees"):
            for name, amount in (override.get(field) or {}).items():
                if EXTENDED_RESOURCE.match(str(name)) and str(amount) not in ("0", ""):
                    resources.add(str(name))
    return Placement(
        node_selector=selector, tolerations=tuple(tolerations), resources=tuple(sorted(resources))
    )


class _Collector:
    def __init__(self) -> None:
        self.placements: dict[str, list[Placement]] = {}
        self.profiles: dict[str, list[str]] = {}

    def add(self, image: str, placement: Placement, profile: str) -> None:
        image = image.strip()
        if not image:
            return
        if not re.match(IMAGE_REFERENCE, image):
            raise ImageMenuError(
                f"profile {profile!r} names {image[:100]!r}, which is not an image reference"
            )
        placements = self.placements.setdefault(image, [])
        if placement not in placements:
            placements.append(placement)
        profiles = self.profiles.setdefault(image, [])
        if profile not in profiles:
            profiles.append(profile)

    def menu(self) -> ImageMenu:
        return ImageMenu(
            images=tuple(
                ImageEntry(image=i, placements=tuple(self.placements[i]), profiles=tuple(self.profiles[i]))
                for i in sorted(self.placements)
            )
        )


def menu_from_profile_list(
    profile_list: Sequence[Mapping[str, Any]],
    extra_images: Iterable[str],
    *,
    default_image: str | None = None,
    base: Mapping[str, Any] | None = None,
    registry_images: Mapping[str, Sequence[str]] | None = None,
) -> ImageMenu:
    """The menu of a hub from kubespawner's ``profile_list`` format.

    ``base`` holds the spawner-level settings (``node_selector``, ``tolerations``, …) that profiles override;
    ``default_image`` is the spawner's ``image``, used by profiles that set none. ``registry_images`` maps
    ``"<profile slug>/<option name>"`` to the tags a registry-backed option currently resolves to (full
    image references). ``unlisted_choice`` values cannot be enumerated and are not prepulled. Extra images
    are eligible on every node the prepuller serves.
    """
    base_placement = _placement([base or {}], Placement())
    collector = _Collector()
    registry = registry_images or {}
    for profile in profile_list:
        slug = profile_slug(profile)
        override = profile.get("kubespawner_override") or {}
        profile_image = override.get("image") or (base or {}).get("image") or default_image
        options = profile.get("profile_options") or {}
        option_images = False
        for option_name, option in options.items():
            for choice in (option.get("choices") or {}).values():
                choice_override = choice.get("kubespawner_override") or {}
                placement = _placement([override, choice_override], base_placement)
                if choice_override.get("image"):
                    option_images = True
                    collector.add(str(choice_override["image"]), placement, slug)
                elif profile_image:
                    collector.add(str(profile_image), placement, slug)
            for image in registry.get(f"{slug}/{option_name}", ()):
                option_images = True
                collector.add(image, _placement([override], base_placement), slug)
        if not option_images and profile_image:
            collector.add(str(profile_image), _placement([override], base_placement), slug)
    if not profile_list and default_image:
        collector.add(default_image, base_placement, "default")
    for image in extra_images:
        collector.add(image, Placement(), "extra")
    return collector.menu()


def configmap_for(menu: ImageMenu, hub_name: str, namespace: str | None = None) -> dict[str, Any]:
    """The ConfigMap the spawner publishes (create, or replace when it exists) in the hub's namespace."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?", hub_name):
        raise ImageMenuError(f"hub name {hub_name!r} is not a valid Kubernetes label value")
    metadata: dict[str, Any] = {
        "name": CONFIGMAP_NAME,
        "labels": {MENU_LABEL: "true", HUB_LABEL: hub_name, "app.kubernetes.io/part-of": "hubkit"},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {CONFIGMAP_KEY: menu.model_dump_json(exclude_none=True)},
    }


def menu_from_configmap(configmap: Mapping[str, Any]) -> ImageMenu:
    """Parse a published menu; raises :class:`ImageMenuError` with a one-line reason."""
    data = configmap.get("data") or {}
    raw = data.get(CONFIGMAP_KEY)
    if raw is None:
        raise ImageMenuError(f"the ConfigMap has no {CONFIGMAP_KEY!r} key")
    try:
        return ImageMenu.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as e:
        first = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        raise ImageMenuError(f"{CONFIGMAP_KEY} is not a valid image menu: {first}") from e


def images_not_everywhere(prepuller_status: Mapping[str, Any]) -> frozenset[str]:
    """Images the spawner should mark "first start may take a few minutes".

    ``prepuller_status`` is the JSON of the prepuller's ``GET /status``; an image counts as everywhere only
    when every node eligible for it is known to hold it. Names are as the prepuller normalises them
    (``busybox`` → ``docker.io/library/busybox:latest``).
    """
    slow = set()
    for entry in prepuller_status.get("images") or []:
        if isinstance(entry, Mapping) and not entry.get("on_every_eligible_node", False):
            slow.add(str(entry.get("image", "")))
    return frozenset(slow - {""})
