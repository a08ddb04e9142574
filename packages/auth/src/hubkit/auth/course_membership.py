"""A launch changes the groups of its own course only (``course:<context>:student|ta|instructor``).

With ``manage_groups`` on, JupyterHub replaces a user's groups with the ones of each login. An LTI
launch speaks for one course, so the groups a launch brings are merged: the user's groups of *other*
courses stay as they are, this course's groups become the launch's. A launch without a course (no
context) changes no course group at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jupyterhub import orm

COURSE_KEY = "hubkit_course"  # auth_model key: the course group id of the launch (None: no course)


def course_prefix(course_id: str) -> str:
    return f"course:{course_id}:"


def is_course_group(name: str) -> bool:
    return name.startswith("course:") and name.count(":") >= 2


def merged_groups(current: Iterable[str], course_id: str | None, launch: Iterable[str]) -> list[str]:
    """The groups after a launch of ``course_id``: other courses' groups kept, this course's replaced.

    Groups that are not course groups are the launch's to decide (as before): they are not kept.
    """
    kept = {g for g in current if is_course_group(g)}
    if course_id is not None:
        kept = {g for g in kept if not g.startswith(course_prefix(course_id))}
    return sorted(kept | set(launch))


def current_groups(db: Any, name: str) -> list[str]:
    """The hub's groups of user ``name`` (none for a user the hub does not have yet)."""
    user = orm.User.find(db, name) if db is not None else None
    return [] if user is None else [g.name for g in user.groups]
