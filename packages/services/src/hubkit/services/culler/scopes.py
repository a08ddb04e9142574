"""The hub scopes the culler needs, from its settings: imported by the chart's hub configuration.

Only the standard library: the hub imports this module (``jupyterhub_config.d/30-hubkit-services.py``)
without loading the culler's HTTP client, metrics or calendar code. ``settings`` is the culler's settings
mapping as the chart renders it (the keys of :class:`~hubkit.services.culler.settings.CullerSettings`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["BASE_SCOPES", "culler_scopes"]

BASE_SCOPES = ("list:users", "read:users:name", "read:users:activity", "read:servers", "delete:servers")
"""Always needed: list users with their servers and activity, stop servers."""


def culler_scopes(settings: Mapping[str, Any]) -> list[str]:
    """:data:`BASE_SCOPES`, plus ``read:users:groups`` when a hold calendar or an idle rule matches on
    groups, plus ``admin:users`` when inactive users are deleted."""
    scopes = list(BASE_SCOPES)
    rules = settings.get("idle_rules") or []
    if settings.get("calendar") or any(rule.get("groups") for rule in rules):
        scopes.append("read:users:groups")
    if (settings.get("users") or {}).get("inactive_days"):
        scopes.append("admin:users")
    return scopes
