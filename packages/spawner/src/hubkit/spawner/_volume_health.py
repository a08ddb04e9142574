"""Spawner mixin: refuse a spawn while hubkit-nfs-keepalive reports the volumes it needs unhealthy."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from traitlets import Float, HasTraits, List, Unicode

from hubkit.services.nfs_keepalive import UNAVAILABLE_MESSAGE, unavailable_volumes

from .exceptions import SpawnRefused
from .keepalive_client import KeepaliveUnavailable, fetch_volume_health

if TYPE_CHECKING:
    from jupyterhub.user import User

# What the user reads: the keepalive contract's message as one sentence.
VOLUMES_DOWN = UNAVAILABLE_MESSAGE[:1].upper() + UNAVAILABLE_MESSAGE[1:] + "; try again later."


class VolumeHealthMixin(HasTraits):
    """Mixed into HubKitSpawner: one health read per spawn, before anything is created."""

    if TYPE_CHECKING:
        log: logging.Logger
        user: User

    nfs_keepalive_url = Unicode(
        "",
        config=True,
        help="""URL of hubkit-nfs-keepalive's GET /health (e.g. http://hubkit-nfs-keepalive:9102/health).
        When set, a spawn is refused with "Home directories are unavailable; an administrator has been
        alerted; try again later." while the keepalive reports any of nfs_keepalive_volumes unhealthy,
        before any pod or ConfigMap is created. If the keepalive cannot be reached the spawn goes on
        (logged). Empty turns the check off.""",
    )
    nfs_keepalive_volumes = List(
        Unicode(),
        default_value=["home"],
        config=True,
        help="""The keepalive volume names every spawn needs (the names in the keepalive's settings,
        e.g. the export holding the homes). Volumes the keepalive does not report are not checked.""",
    )
    nfs_keepalive_timeout = Float(3.0, config=True, help="Seconds to wait for the NFS keepalive's health.")

    async def check_volumes(self) -> None:
        """Raise :class:`SpawnRefused` when a needed volume is unhealthy; go on when that is unknown."""
        url = self.nfs_keepalive_url
        if not url or not self.nfs_keepalive_volumes:
            return
        try:
            status = await fetch_volume_health(url, self.nfs_keepalive_timeout)
        except KeepaliveUnavailable as e:
            self.log.warning("Spawning %s without checking its NFS volumes: %s", self.user.name, e)
            return
        down = unavailable_volumes(status, self.nfs_keepalive_volumes)
        if not down:
            return
        volumes = status["volumes"]
        context = "; ".join(
            f"volume={name} unhealthy_since={volumes[name].get('unhealthy_since')} "
            f"step={volumes[name].get('failing_step')} error={volumes[name].get('error')!r}"
            for name in down
        )
        raise SpawnRefused(VOLUMES_DOWN, f"user={self.user.name} {context}")
