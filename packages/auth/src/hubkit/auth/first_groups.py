"""A new user's managed groups joined in one cheap step when the hub creates the user.

With ``manage_groups`` on, JupyterHub calls ``User.sync_groups`` after every login. For a brand-new
user (every student's first LTI launch) that loads each group together with its eagerly loaded
roles and shares - two more queries per group - and commits. HubKit remembers the groups of the auth
model in the post-auth hook and joins them in ``add_user``, which the hub calls right after creating
the user: the groups' relationships stay lazily loaded (loaded on first use, never wrongly empty),
and ``sync_groups`` then finds nothing left to change. Whenever this path does not apply (an
existing user, a stale entry, a database error) JupyterHub's own synchronisation does the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from jupyterhub import orm
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import lazyload

FRESH_SECONDS = 30.0  # a login and the hub's add_user for it happen within one request
MAX_PENDING = 10_000  # logins of existing users never reach add_user: bound what they leave behind

_pending: dict[str, tuple[float, frozenset[str]]] = {}


def remember(auth_model: Mapping[str, Any] | None) -> None:
    """Note the managed groups of a successful login until the hub creates (or does not create) the user."""
    if not auth_model:
        return
    name, groups = auth_model.get("name"), auth_model.get("groups")
    if not isinstance(name, str) or groups is None:
        return
    _pending.pop(name, None)
    while len(_pending) >= MAX_PENDING:
        _pending.pop(next(iter(_pending)))
    _pending[name] = (time.monotonic(), frozenset(groups))


def join_remembered(user: Any, log: logging.Logger | logging.LoggerAdapter[Any]) -> bool:
    """Put a just-created user into the groups remembered for it; True if this did the work."""
    entry = _pending.pop(getattr(user, "name", ""), None)
    if entry is None or time.monotonic() - entry[0] > FRESH_SECONDS or not entry[1]:
        return False
    orm_user, db = user.orm_user, user.db
    try:
        if orm_user.groups:  # not a brand-new user: JupyterHub's sync_groups reconciles it
            return False
        groups = (
            db.query(orm.Group)
            .options(lazyload(orm.Group.roles), lazyload(orm.Group.shared_with_me))
            .filter(orm.Group.name.in_(entry[1]))
            .all()
        )
        for name in sorted(entry[1] - {g.name for g in groups}):
            log.info("Creating new group %s for user %s", name, user.name)
            group = orm.Group(name=name)
            db.add(group)
            groups.append(group)
        log.info("Adding new user %s to group(s): %s", user.name, sorted(entry[1]))
        orm_user.groups = groups
        db.commit()
    except SQLAlchemyError:
        log.warning("Could not add new user %s to its groups; the hub's group sync retries", user.name)
        db.rollback()
        return False
    return True
