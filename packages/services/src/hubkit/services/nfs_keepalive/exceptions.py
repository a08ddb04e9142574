"""Errors of the NFS keepalive."""

from __future__ import annotations

from hubkit.services.common.exceptions import ServiceError


class KeepaliveError(ServiceError):
    """Base class of the keepalive's errors."""


class ProbeStepError(KeepaliveError):
    """One probe step failed; ``step`` says which (connect, write, fsync, read, stat)."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"{step}: {message}")
