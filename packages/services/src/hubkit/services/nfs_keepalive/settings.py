"""The keepalive's settings (YAML/JSON file and ``HUBKIT_NFS_KEEPALIVE_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hubkit.services.common.settings import ServiceSettings

__all__ = ["KeepaliveSettings", "VolumeSettings"]


class VolumeSettings(BaseModel):
    """One NFS volume: a mounted directory, or an ``nfs://`` URL probed with libnfs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Used in /health, metrics, logs.")
    mode: Literal["directory", "nfs"] = "directory"
    path: Path | None = Field(default=None, description="directory mode: where the volume is mounted.")
    url: str | None = Field(
        default=None,
        pattern=r"^nfs://",
        description="nfs mode: nfs://<server IP>/<export>?version=4 (libnfs URL syntax).",
    )
    timeout_seconds: float | None = Field(default=None, gt=0, description="Overrides the global timeout.")

    @model_validator(mode="after")
    def _target(self) -> VolumeSettings:
        if self.mode == "directory" and (self.path is None or self.url is not None):
            raise ValueError(f"volume {self.name!r}: directory mode needs path (and no url)")
        if self.mode == "nfs" and (self.url is None or self.path is not None):
            raise ValueError(f"volume {self.name!r}: nfs mode needs url (and no path)")
        if self.path is not None and not self.path.is_absolute():
            raise ValueError(f"volume {self.name!r}: path must be absolute")
        return self

    @property
    def target(self) -> str:
        return str(self.path) if self.mode == "directory" else str(self.url)


class KeepaliveSettings(ServiceSettings):
    """Everything the NFS keepalive can be told. Unknown keys are rejected."""

    volumes: list[VolumeSettings] = Field(min_length=1)
    interval_seconds: float = Field(default=30, gt=0, description="Time between probes of a volume.")
    timeout_seconds: float = Field(default=10, gt=0, description="A probe past this is a failure.")
    file_name: str = Field(
        default=".hubkit-keepalive",
        pattern=r"^\.?[A-Za-z0-9_-][A-Za-z0-9_.-]{0,100}$",
        description="The probe file in each volume's root.",
    )
    max_stuck_probes: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Killed probes that have not exited yet (a process in uninterruptible NFS wait) "
        "after which no new probe of that volume is started until one exits.",
    )
    listen: str | None = Field(default=None, pattern=r"^[^:]+:\d+$", description="host:port of /health.")

    @model_validator(mode="after")
    def _unique(self) -> KeepaliveSettings:
        names = [v.name for v in self.volumes]
        if len(names) != len(set(names)):
            raise ValueError("volume names must be unique")
        return self
