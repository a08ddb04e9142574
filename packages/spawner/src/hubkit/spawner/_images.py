"""Spawner mixin: profile options whose choices come from a registry's tags, and unlisted-tag checks."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from traitlets import Float, HasTraits, Unicode

from .exceptions import KubernetesStorageError, SpawnRefused
from .image_menu import (
    MenuEntry,
    RegistrySource,
    expand_registry_option,
    fallback_entries,
    menu_entries,
    parse_registry,
    with_alias,
)
from .profiles import Profile, Selection
from .pull_secrets import PullSecretError, credentials_for, secret_names
from .registry_client import Credentials, RegistryUnavailable, TagCache

if TYPE_CHECKING:
    from jupyterhub.user import User

    from .kube_storage import KubeStorage


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ImageMenuMixin(HasTraits):
    """Mixed into HubKitSpawner; the tag cache is shared by all spawners of the hub."""

    if TYPE_CHECKING:
        log: logging.Logger
        user: User
        namespace: str
        enable_user_namespaces: bool
        kube_storage: KubeStorage

        def configured(self, name: str) -> Any: ...
        def _namespace_default(self) -> str: ...

    registry_cache_ttl = Float(
        300.0,
        config=True,
        help="""Seconds a registry's tag list (and the digests used to find the recommended tag's alias)
        is cached for image menus, shared by all users' spawners. A failed read is retried after the same
        time; meanwhile the menu shows the last good list, or only the recommended tag.""",
    )
    registry_timeout = Float(10.0, config=True, help="Seconds to wait for the image registry.")
    registry_secrets_namespace = Unicode(
        "",
        config=True,
        help="""Namespace of the pull secrets (image_pull_secrets and a registry block's pull_secret) the
        hub reads registry credentials from. Empty means the spawner's namespace, or, with
        enable_user_namespaces, the hub's own.""",
    )

    _tag_caches: ClassVar[dict[float, TagCache]] = {}
    # (namespace, secret names, registry host) → (monotonic time, credentials or None)
    _credential_cache: ClassVar[dict[tuple[str, tuple[str, ...], str], tuple[float, Credentials | None]]] = {}

    @property
    def tag_cache(self) -> TagCache:
        return self._tag_caches.setdefault(self.registry_cache_ttl, TagCache(self.registry_cache_ttl))

    # --- credentials -------------------------------------------------------------------------------

    def secrets_namespace(self) -> str:
        if self.registry_secrets_namespace:
            return str(self.registry_secrets_namespace)
        return self._namespace_default() if self.enable_user_namespaces else self.namespace

    async def registry_credentials(self, source: RegistrySource) -> Credentials | None:
        """The first pull secret's credentials for the registry's host (cached for the TTL), or None."""
        names = tuple(
            dict.fromkeys([source.pull_secret, *secret_names(self.configured("image_pull_secrets"))])
        )
        names = tuple(n for n in names if n)
        if not names:
            return None
        namespace = self.secrets_namespace()
        key = (namespace, names, source.url)
        hit = self._credential_cache.get(key)
        if hit and time.monotonic() - hit[0] < self.registry_cache_ttl:
            return hit[1]
        secrets: list[tuple[str, dict[str, str]]] = []
        for name in names:
            try:
                kind, data = await self.kube_storage.read_secret_data(namespace, name)
            except KubernetesStorageError as e:
                self.log.warning("Pull secret %s/%s is not used for image menus: %s", namespace, name, e)
                continue
            if kind != "kubernetes.io/dockerconfigjson":
                self.log.warning(
                    "Pull secret %s/%s is not used for image menus: its type is %r, not "
                    "kubernetes.io/dockerconfigjson",
                    namespace,
                    name,
                    kind,
                )
                continue
            secrets.append((name, data))
        try:
            credentials = credentials_for(source.url, secrets)
        except PullSecretError as e:
            self.log.warning("Image menus read %s without credentials: %s", source.url, e)
            credentials = None
        self._credential_cache[key] = (time.monotonic(), credentials)
        return credentials

    # --- menus -------------------------------------------------------------------------------------

    async def _registry_entries(self, source: RegistrySource, where: str) -> list[MenuEntry]:
        """The option's menu entries; a registry that fails gives the last good list or the fallback."""
        cache = self.tag_cache
        try:
            tags = cache.fresh(source.url, source.repository)
        except RegistryUnavailable:  # failed less than a TTL ago, and said so in the log then
            return self._fallback(source, where, None)
        credentials = await self.registry_credentials(source)
        if tags is None:
            try:
                tags = await cache.tags(source.url, source.repository, self.registry_timeout, credentials)
            except RegistryUnavailable as e:
                return self._fallback(source, where, e)
        entries = menu_entries(source, tags)
        if source.recommended and len(entries) > 1:
            try:
                digests = await cache.digests(
                    source.url,
                    source.repository,
                    [e.tag for e in entries],
                    self.registry_timeout,
                    credentials,
                )
            except RegistryUnavailable as e:
                self.log.info("Image menu %s shows no alias of its recommended tag: %s", where, e)
            else:
                entries = with_alias(source, entries, digests)
        return entries

    def _fallback(
        self, source: RegistrySource, where: str, error: RegistryUnavailable | None
    ) -> list[MenuEntry]:
        last = self.tag_cache.last_good(source.url, source.repository)
        if last is not None:
            age, tags = last
            what = f"the tag list of {describe_age(age)} ago"
            entries = with_alias(
                source,
                menu_entries(source, tags),
                self.tag_cache.known_digests(source.url, source.repository),
            )
        else:
            entries = fallback_entries(source)
            what = f"only its recommended tag {source.recommended}" if entries else "no registry tags"
        if error is not None:
            self.log.warning("Image menu %s shows %s: %s", where, what, error)
        return entries

    async def expand_image_menus(self, profiles: list[Profile]) -> None:
        """Fill every option that names a registry with choices from its tags (in place)."""
        for profile in profiles:
            for name, option in (profile.get("profile_options") or {}).items():
                if "registry" not in option:
                    continue
                where = f"{profile.get('slug')}/{name}"
                source = parse_registry(option["registry"], where)
                expand_registry_option(option, source, await self._registry_entries(source, where))

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
            credentials = await self.registry_credentials(source)
            client = self.tag_cache.client(source.url, credentials, self.registry_timeout)
            try:
                exists = await client.tag_exists(source.repository, value)
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
