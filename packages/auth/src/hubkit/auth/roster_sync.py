"""Course groups follow the LMS roster (NRPS): applied in one transaction, retried with backoff.

``apply_roster`` makes each ``course:<ctx>:<kind>`` group hold exactly the roster's active members of
that kind: members who never launched get a hub user (with JupyterHub's default ``user`` role) so
access rules apply before their first launch, dropped and inactive members leave the course's groups
(their other groups stay). One commit: a failure rolls everything back.

``RosterSchedule`` remembers the courses instructors launched from and tells which are due; a failed
sync is retried later, waiting twice as long after each failure (up to ``max_backoff``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jupyterhub import orm


@dataclass(frozen=True)
class RosterChange:
    created: tuple[str, ...]
    added: tuple[tuple[str, str], ...]  # (group, user)
    removed: tuple[tuple[str, str], ...]


def apply_roster(db: Any, desired: Mapping[str, set[str]]) -> RosterChange:
    """Make every group in ``desired`` hold exactly its members, creating missing users; one commit."""
    created: list[str] = []
    added: list[tuple[str, str]] = []
    removed: list[tuple[str, str]] = []
    try:
        user_role = orm.Role.find(db, "user")
        users: dict[str, Any] = {}
        for name in sorted({n for members in desired.values() for n in members}):
            user = orm.User.find(db, name)
            if user is None:
                user = orm.User(name=name)
                db.add(user)
                if user_role is not None:
                    user.roles.append(user_role)
                created.append(name)
            users[name] = user
        for group_name, members in sorted(desired.items()):
            group = orm.Group.find(db, group_name)
            if group is None:
                group = orm.Group(name=group_name)
                db.add(group)
            current = {u.name for u in group.users}
            added += [(group_name, n) for n in sorted(members - current)]
            removed += [(group_name, n) for n in sorted(current - members)]
            group.users = [users[n] for n in sorted(members)]
        db.commit()
    except Exception:
        db.rollback()
        raise
    return RosterChange(tuple(created), tuple(added), tuple(removed))


@dataclass(frozen=True)
class CourseService:
    """Where one course's roster is read: its platform, our client id there, the memberships URL."""

    issuer: str
    client_id: str
    context_id: str
    memberships_url: str


@dataclass
class _Due:
    at: float
    failures: int = 0


@dataclass
class RosterSchedule:
    interval: float
    min_backoff: float = 30.0
    max_backoff: float = 3600.0
    courses: dict[CourseService, _Due] = field(default_factory=dict)

    def remember(self, course: CourseService) -> None:
        self.courses.setdefault(course, _Due(time.monotonic() + self.interval))

    def due(self, now: float | None = None) -> list[CourseService]:
        now = time.monotonic() if now is None else now
        return [c for c, d in self.courses.items() if d.at <= now]

    def succeeded(self, course: CourseService) -> None:
        self.courses[course] = _Due(time.monotonic() + self.interval)

    def failed(self, course: CourseService) -> float:
        """Record a failure; returns the seconds until the next attempt."""
        due = self.courses.setdefault(course, _Due(0.0))
        due.failures += 1
        wait = float(min(self.max_backoff, self.min_backoff * 2.0 ** (due.failures - 1)))
        due.at = time.monotonic() + wait
        return wait
