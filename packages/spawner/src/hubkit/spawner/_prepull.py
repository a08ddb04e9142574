"""Spawner mixin: publish the hub's image menu for hubkit-prepuller, and read back what is not pulled yet."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar

from traitlets import Float, HasTraits, List, Unicode

from hubkit.services.image_menu_contract import CONFIGMAP_NAME

from .prepull import PLACEMENT_KEYS, MenuSource, SlowImages, menu_configmap, menu_namespace, slow_images
from .prepuller_client import PrepullerUnavailable, StatusCache
from .profiles import Profile

if TYPE_CHECKING:
    from .kube_storage import KubeStorage


class PrepullMixin(HasTraits):
    """Mixed into HubKitSpawner; publishing and the status cache are shared by all spawners of the hub."""

    if TYPE_CHECKING:
        kube_storage: KubeStorage
        log: logging.Logger
        namespace: str
        enable_user_namespaces: bool
        _hubkit_baseline: dict[str, Any]

        def _namespace_default(self) -> str: ...

    prepull_extra_images = List(
        Unicode(),
        config=True,
        help="""Images to list in the published image menu besides those of the profiles (say a
        notebook image that course material starts by hand). The prepuller pulls them onto every node it
        serves.""",
    )
    image_menu_publish_interval = Float(
        300.0,
        config=True,
        help="""Publish the hub's image menu (the ConfigMap hubkit-image-menu in image_menu_namespace,
        read by hubkit-prepuller) at most once per this many seconds, when a spawn form is shown or a
        server is started. The menu lists every profile and option choice regardless of who asks,
        registry-backed menus with the tags they currently list, and prepull_extra_images; the object is
        written only when its content changed. Publishing runs in the background and never fails a
        spawn. 0 disables publishing.""",
    )
    image_menu_hub_name = Unicode(
        "",
        config=True,
        help="""The hub's name in the published image menu (label hubkit.dev/hub, shown in the
        prepuller's status). Empty means the namespace the menu is published in.""",
    )
    image_menu_namespace = Unicode(
        "",
        config=True,
        help="""Namespace of the published image menu. Empty means the spawner's namespace, or, with
        enable_user_namespaces, the hub's own namespace (that of its service account, as KubeSpawner
        finds it): one menu per hub, never one per user namespace.""",
    )
    prepuller_status_url = Unicode(
        "",
        config=True,
        help="""URL of hubkit-prepuller's GET /status (e.g. http://hubkit-prepuller:9460/status). When
        set, the spawn form marks every image that is not yet on all nodes where it can run with "first
        start may take a few minutes". Empty turns the marks off; an unreachable prepuller leaves the form
        without marks.""",
    )
    prepuller_status_timeout = Float(2.0, config=True, help="Seconds to wait for the prepuller's status.")
    prepuller_status_ttl = Float(
        30.0,
        config=True,
        help="Seconds the prepuller's status (or its being unreachable) is cached for the spawn form.",
    )

    _menu_attempted: ClassVar[dict[str, float]] = {}  # namespace → monotonic time of the last publish
    _menu_tasks: ClassVar[dict[str, asyncio.Task[str | None]]] = {}
    _status_caches: ClassVar[dict[float, StatusCache]] = {}

    def configured(self, name: str) -> Any:
        """A trait's configured value, not the one the current spawn's profile overrode."""
        return copy.deepcopy(self._hubkit_baseline.get(name, getattr(self, name)))

    # --- publishing the menu -----------------------------------------------------------------------

    def menu_namespace(self) -> str:
        hub_namespace = self._namespace_default() if self.enable_user_namespaces else None
        return menu_namespace(self.image_menu_namespace, self.namespace, hub_namespace)

    def menu_source(self, profiles: list[Profile]) -> MenuSource:
        base = {key: self.configured(key) for key in PLACEMENT_KEYS if key != "image"}
        namespace = self.menu_namespace()
        return MenuSource(
            profiles=copy.deepcopy(profiles),
            default_image=str(self.configured("image") or ""),
            base=base,
            hub_name=self.image_menu_hub_name or namespace,
            namespace=namespace,
            extra_images=tuple(self.prepull_extra_images),
        )

    def schedule_menu_publish(self, profiles: list[Profile]) -> asyncio.Task[str | None] | None:
        """Start publishing the menu in the background unless it was done less than an interval ago."""
        interval = self.image_menu_publish_interval
        if interval <= 0:
            return None
        key = self.menu_namespace()
        running = self._menu_tasks.get(key)
        if running is not None and not running.done():
            return None
        last = self._menu_attempted.get(key)
        if last is not None and time.monotonic() - last < interval:
            return None
        self._menu_attempted[key] = time.monotonic()
        task = asyncio.ensure_future(self.publish_menu(self.menu_source(profiles)))
        self._menu_tasks[key] = task
        return task

    async def publish_menu(self, source: MenuSource) -> str | None:
        """Create or replace the menu ConfigMap; a failure is logged, never raised (returns None)."""
        where = f"{source.namespace}/{CONFIGMAP_NAME}"
        try:
            outcome = await self.kube_storage.apply_configmap(menu_configmap(source))
        except Exception as e:  # background work: whatever went wrong, the hub and its spawns go on
            self.log.warning(
                "Cannot publish the image menu %s (hub %s) for the prepuller; retrying in %.0f s: %s",
                where,
                source.hub_name,
                self.image_menu_publish_interval,
                str(e) or type(e).__name__,
            )
            return None
        if outcome == "unchanged":
            self.log.debug("Image menu %s is up to date", where)
        else:
            self.log.info("Image menu %s %s", where, outcome)
        return outcome

    # --- what is not pulled yet --------------------------------------------------------------------

    @property
    def status_cache(self) -> StatusCache:
        return self._status_caches.setdefault(
            self.prepuller_status_ttl, StatusCache(self.prepuller_status_ttl)
        )

    async def image_hints(self, profiles: list[Profile]) -> SlowImages:
        """The profiles and choices whose image is not on every eligible node yet (none when unknown)."""
        url = self.prepuller_status_url
        if not url:
            return SlowImages()
        cache = self.status_cache
        try:
            images = await cache.not_everywhere(url, self.prepuller_status_timeout)
        except PrepullerUnavailable as e:
            if cache.reachable.get(url, True):
                self.log.warning("The spawn form shows no image hints while the prepuller is down: %s", e)
            cache.reachable[url] = False
            return SlowImages()
        if images is None:  # the cached failure
            return SlowImages()
        if cache.reachable.get(url) is False:
            self.log.info("The prepuller status at %s answers again", url)
        cache.reachable[url] = True
        return slow_images(profiles, str(self.configured("image") or ""), images)
