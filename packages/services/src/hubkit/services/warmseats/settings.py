"""Typed settings of ``hubkit-warmseats`` (YAML or JSON file plus HUBKIT_WARMSEATS_* variables)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from hubkit.services.common import ServiceSettings
from hubkit.services.image_menu_contract import Toleration

__all__ = ["SeatSize", "WarmSeatsSettings"]

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


class SeatSize(ServiceSettings):
    """One placeholder size: a profile class or node pool (GPU included)."""

    name: str = Field(description="Short name (lowercase, digits, dashes), used in object names and metrics.")
    cpu: str = Field(description="CPU request of one seat, as the user pods of this class request it.")
    memory: str = Field(description="Memory request of one seat.")
    extended_resources: dict[str, int] = Field(
        default_factory=dict, description='Extended resources per seat, e.g. {"nvidia.com/gpu": 1}.'
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node pool of this size.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations of that pool.")
    profiles: list[str] = Field(
        default_factory=list, description="Profile slugs whose users take a seat of this size (calendar mix)."
    )
    baseline: int = Field(default=0, ge=0, description="Seats kept at all times.")
    maximum: int = Field(default=200, ge=0, description="Never more seats than this.")
    image_pull_seconds: float = Field(
        default=0, ge=0, description="Pull time of this class's images on a fresh node if not prepulled."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-32 lowercase letters, digits or dashes")
        return value


class WarmSeatsSettings(ServiceSettings):
    namespace: str = Field(description="Namespace of the placeholder Deployments (the broker's own).")
    kubeconfig: str | None = Field(default=None, description="Kubeconfig; default: the service account.")
    sizes: list[SeatSize] = Field(min_length=1, description="Placeholder sizes, most common first.")
    scheduler_name: str = Field(
        default="hubkit-packing-scheduler",
        description="The shared scheduler every hub's user pods and all placeholders use.",
    )
    priority_class_name: str = Field(default="hubkit-warmseat", description="PriorityClass of placeholders.")
    priority_value: int = Field(
        default=-5,
        ge=-10,
        le=-1,
        description=(
            "Below every hub's users (0 or more) and not below the cluster autoscaler's expendable cutoff "
            "(-10), so a pending placeholder still makes the autoscaler add a node."
        ),
    )
    pause_image: str = Field(default="registry.k8s.io/pause:3.10", description="Image of placeholder pods.")
    calendar_path: str | None = Field(default=None, description="ICS file with class sessions.")
    calendar_url: str | None = Field(default=None, description="ICS URL with class sessions (fetched).")
    calendar_timezone: str = Field(default="UTC", description="Zone of calendar times without one.")
    default_lead_minutes: float = Field(default=15, ge=0, description="Lead time of events that set none.")
    late_arrival_minutes: float = Field(
        default=10, ge=0, description="Seats are held for expected students until this long after the start."
    )
    node_ready_seconds: float = Field(default=240, ge=0, description="Time for the autoscaler to add a node.")
    arrival_window_seconds: float = Field(default=600, gt=0, description="Window of the arrival rate.")
    user_pod_selector: str = Field(
        default="component=singleuser-server", description="Label selector of user pods, in all namespaces."
    )
    hub_label: str = Field(
        default="hubkit.dev/hub", description="Label naming a user pod's hub; else its namespace is the hub."
    )
    size_label: str = Field(
        default="hubkit.dev/warmseat-size",
        description="Label naming a user pod's seat size; else the smallest size that fits its requests.",
    )
    reconcile_seconds: float = Field(default=30, gt=0, description="Reconcile at least this often.")
    listen_host: str = Field(default="0.0.0.0", description="Address of /health, /metrics and /status.")
    listen_port: int = Field(default=9461, ge=0, le=65535, description="Port of the status server.")

    @model_validator(mode="after")
    def _one_calendar(self) -> WarmSeatsSettings:
        if self.calendar_path and self.calendar_url:
            raise ValueError("set calendar_path or calendar_url, not both")
        try:
            ZoneInfo(self.calendar_timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"calendar_timezone {self.calendar_timezone!r} is not a known time zone") from e
        return self

    @field_validator("sizes")
    @classmethod
    def _unique(cls, sizes: list[SeatSize]) -> list[SeatSize]:
        names = [s.name for s in sizes]
        if len(set(names)) != len(names):
            raise ValueError("size names must be unique")
        return sizes
