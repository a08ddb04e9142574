"""GitHub org/team memberships as data, and matching ``org`` / ``org:team`` rules against them (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass
class Memberships:
    read_org: bool
    orgs: dict[str, int] = field(default_factory=dict)  # org login (lower) -> id (0 when unknown)
    teams: dict[str, int] = field(default_factory=dict)  # "org:slug" (lower) -> id, ancestors included

    def to_json(self) -> dict[str, Any]:
        return {"read_org": self.read_org, "orgs": self.orgs, "teams": self.teams}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Memberships:
        return cls(bool(data.get("read_org")), dict(data.get("orgs") or {}), dict(data.get("teams") or {}))


def matches(found: Memberships, entry: str) -> bool:
    """Whether ``org`` or ``org:team`` (a member of a child team counts for the parent) applies."""
    entry = entry.lower()
    return entry in found.teams if ":" in entry else entry in found.orgs


def parse_link_next(link: str) -> str | None:
    match = _NEXT.search(link or "")
    return match.group(1) if match else None
