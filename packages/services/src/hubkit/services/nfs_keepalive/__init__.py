"""hubkit-nfs-keepalive: keep NFS volumes awake, measure them, and say when they are unhealthy.

Run as a JupyterHub service (``hubkit-nfs-keepalive --config keepalive.yaml``); see docs/services.md
for the ``/health`` contract the spawner reads (:func:`unavailable_volumes`, :data:`UNAVAILABLE_MESSAGE`).
"""

from hubkit.services.nfs_keepalive.cli import main
from hubkit.services.nfs_keepalive.exceptions import KeepaliveError, ProbeStepError
from hubkit.services.nfs_keepalive.health import (
    UNAVAILABLE_MESSAGE,
    ProbeResult,
    VolumeHealth,
    unavailable_volumes,
)
from hubkit.services.nfs_keepalive.probe import ProbeRunner
from hubkit.services.nfs_keepalive.service import Keepalive
from hubkit.services.nfs_keepalive.settings import KeepaliveSettings, VolumeSettings

__all__ = [
    "UNAVAILABLE_MESSAGE",
    "Keepalive",
    "KeepaliveError",
    "KeepaliveSettings",
    "ProbeResult",
    "ProbeRunner",
    "ProbeStepError",
    "VolumeHealth",
    "VolumeSettings",
    "main",
    "unavailable_volumes",
]
