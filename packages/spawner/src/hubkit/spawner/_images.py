"""Spawner mixin: profile options whose choices come from a registry's tags, and unlisted-tag checks."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

from traitlets import Float, HasTraits

from .exceptions import SpawnRefused
from .image_menu import expand_registry_option, parse_registry
from .profiles import Profile, Selection
from .registry_client import RegistryUnavailable, TagCache, tag_exists

if TYPE_CHECKING:
    from jupyterhub.user import User


class ImageMenuMixin(HasTraits):
    """Mixed into HubKitSpawner; the tag cache is shared by all spawners of the hub."""

    if TYPE_CHECKING:
        log: logging.Logger
        user: User

    registry_cache_ttl = Float(
        300.0,
        config=True,
        help="Seconds a registry's tag list is cached for image menus (shared by all users' spawners).",
    )
    registry_timeout = Float(10.0, config=True, help="Seconds to wait for the image registry.")

    _tag_caches: ClassVar[dict[float, TagCache]] = {}

    @property
    def tag_cache(self) -> TagCache:
        return self._tag_caches.setdefault(self.registry_cache_ttl, TagCache(self.registry_cache_ttl))

    async def expand_image_menus(self, profiles: list[Profile]) -> None:
        """Fill every option that names a registry with choices from its tags (in place)."""
        for profile in profiles:
            for name, option in (profile.get("profile_options") or {}).items():
                if "registry" not in option:
                    continue
                source = parse_registry(option["registry"], f"{profile.get('slug')}/{name}")
                try:
                    tags: list[str] | None = await self.tag_cache.tags(
                        source.url, source.repository, self.registry_timeout
                    )
                except RegistryUnavailable as e:
                    self.log.warning(
                        "Image menu %s/%s falls back to its recommended tag: %s", profile.get("slug"), name, e
                    )
                    tags = None
                expand_registry_option(option, source, tags)

    async def check_unlisted_images(self, profiles: list[Profile], selection: Selection) -> None:
        """An unlisted tag for a registry option must exist in the registry."""
        if not selection.unlisted:
            return
        profile = next(p for p in profiles if p["slug"] == selection.profile)
        for name, value in selection.unlisted.items():
            option: dict[str, Any] = profile["profile_options"][name]
            if "registry" not in option:
                continue
            source = parse_registry(option["registry"], name)
            where = f"user={self.user.name} profile={selection.profile} option={name} tag={value!r:.80}"
            try:
                exists = await tag_exists(source.url, source.repository, value, self.registry_timeout)
            except RegistryUnavailable as e:
                raise SpawnRefused(
                    "The image registry cannot be reached right now; pick a listed image or try again later.",
                    f"{where} {e}",
                ) from e
            if not exists:
                listed = ", ".join(option["choices"]) or "nothing"
                raise SpawnRefused(
                    f"The image tag {value[:80]!r} does not exist in {source.repository}; "
                    f"pick one of: {listed}.",
                    where,
                )
