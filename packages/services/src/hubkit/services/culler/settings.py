"""The culler's settings (YAML/JSON file and ``HUBKIT_CULLER_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hubkit.services.common.settings import ServiceSettings

__all__ = ["CalendarSettings", "CullerSettings", "IdleRule", "UserCulling"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdleRule(_Section):
    """An idle timeout for servers of some profiles and/or users of some groups (first match wins)."""

    name: str = Field(min_length=1, max_length=63, description="Shown in logs and metrics as idle:<name>.")
    profiles: list[str] = Field(default_factory=list, description="Profile slugs (user_options.profile).")
    groups: list[str] = Field(default_factory=list, description="Hub groups; a member of any one matches.")
    timeout_seconds: float = Field(gt=0, description="Cull a matching server idle for at least this long.")

    @model_validator(mode="after")
    def _needs_a_match(self) -> IdleRule:
        if not self.profiles and not self.groups:
            raise ValueError(f"idle rule {self.name!r} must list profiles, groups or both")
        return self

    def matches(self, profile: str | None, groups: frozenset[str]) -> bool:
        if self.profiles and profile not in self.profiles:
            return False
        return not self.groups or bool(groups.intersection(self.groups))


class UserCulling(_Section):
    """Deleting users (not only their servers) who have not been active for a while."""

    inactive_days: float | None = Field(default=None, gt=0, description="None: never delete users.")
    include_admins: bool = Field(default=False, description="Also delete inactive admin users.")


class CalendarSettings(_Section):
    """An ICS calendar of scheduled sessions: during an event, matching servers are not culled."""

    path: Path | None = None
    url: str | None = Field(default=None, pattern=r"^https?://")
    refresh_seconds: float = Field(default=300, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> CalendarSettings:
        if (self.path is None) == (self.url is None):
            raise ValueError("calendar needs exactly one of path or url")
        return self


class CullerSettings(ServiceSettings):
    """Everything the culler can be told. Unknown keys are rejected."""

    interval_seconds: float = Field(default=600, gt=0, description="Time between sweeps.")
    idle_timeout_seconds: float = Field(default=3600, gt=0, description="Idle timeout when no rule matches.")
    idle_rules: list[IdleRule] = Field(default_factory=list)
    max_age_seconds: float | None = Field(default=None, gt=0, description="Cull servers older than this.")
    cull_default_servers: bool = True
    cull_named_servers: bool = True
    remove_named_servers: bool = Field(default=False, description="Delete culled named servers entirely.")
    users: UserCulling = Field(default_factory=UserCulling)
    calendar: CalendarSettings | None = None
    concurrency: int = Field(default=10, ge=1, le=200, description="Hub API requests in flight at most.")
    page_size: int = Field(default=200, ge=1, le=10000)
    request_timeout_seconds: float = Field(default=30, gt=0)
    retry_attempts: int = Field(default=5, ge=1, le=20)
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30, gt=0)
    dry_run: bool = False
    listen: str | None = Field(
        default=None,
        pattern=r"^[^:]+:\d+$",
        description="host:port for /metrics and /health; default: the service url the hub gives.",
    )

    @model_validator(mode="after")
    def _unique_rules(self) -> CullerSettings:
        names = [r.name for r in self.idle_rules]
        if len(names) != len(set(names)):
            raise ValueError("idle rule names must be unique")
        return self
