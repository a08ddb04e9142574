"""A new user's managed groups, written in the same commit that creates the user.

With ``manage_groups`` on, JupyterHub calls ``User.sync_groups`` after every login. For a brand-new
user (every student's first LTI launch) that means one more query per login, two eager loads per
group (its roles and shares), a lazy load of the user's (empty) groups, a second ORM flush and one
more durable commit right after the one that created the user.

HubKit remembers the groups of a successful login's auth model (post-auth hook) and listens to the
hub's database session (SQLAlchemy's public ``before_flush`` event): when the flush that inserts that
new ``User`` row runs, the user joins its groups in the same flush and commit. The groups' roles and
shares stay lazily loaded (loaded on first use, never wrongly empty). ``sync_groups`` then finds
nothing left to change, and handles every later change as before. A login of an existing user never
reaches the hook; its entry just expires.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from jupyterhub import orm
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, lazyload

FRESH_SECONDS = 30.0  # a login and the creation of its user happen within one request
MAX_PENDING = 10_000
_LISTENING = "hubkit_first_groups"  # Session.info key: the hook is installed on this session

Logger = logging.Logger | logging.LoggerAdapter[Any]
_pending: dict[str, tuple[float, frozenset[str]]] = {}


def remember(db: Any, auth_model: Mapping[str, Any] | None, log: Logger) -> None:
    """Note the managed groups of a successful login, for the flush that may create its user."""
    if not auth_model or not isinstance(db, Session):
        return
    name, groups = auth_model.get("name"), auth_model.get("groups")
    if not isinstance(name, str) or groups is None:
        return
    now = time.monotonic()
    while _pending and (
        len(_pending) >= MAX_PENDING or now - next(iter(_pending.values()))[0] > FRESH_SECONDS
    ):
        _pending.pop(next(iter(_pending)))  # oldest first: entries are kept in arrival order
    _pending.pop(name, None)
    _pending[name] = (now, frozenset(groups))
    if not db.info.get(_LISTENING):
        db.info[_LISTENING] = True
        event.listen(db, "before_flush", lambda session, _context, _instances: join_new_users(session, log))


def _stale(entry: tuple[float, frozenset[str]], now: float) -> bool:
    return now - entry[0] > FRESH_SECONDS


def join_new_users(session: Session, log: Logger) -> None:
    """``before_flush``: give every new User with remembered groups its memberships in this flush."""
    if not _pending:
        return
    for user in [o for o in session.new if isinstance(o, orm.User)]:
        entry = _pending.pop(user.name, None)
        if entry is None or _stale(entry, time.monotonic()) or not entry[1]:
            continue
        try:
            with session.no_autoflush:
                groups = (
                    session.query(orm.Group)
                    .options(lazyload(orm.Group.roles), lazyload(orm.Group.shared_with_me))
                    .filter(orm.Group.name.in_(entry[1]))
                    .all()
                )
        except SQLAlchemyError as e:  # the hub's own group sync will try again after this commit
            log.warning(
                "Could not look up the groups of new user %s (%s); the hub's group sync retries", user.name, e
            )
            continue
        for name in sorted(entry[1] - {g.name for g in groups}):
            log.info("Creating new group %s for user %s", name, user.name)
            group = orm.Group(name=name)
            session.add(group)
            groups.append(group)
        log.info("Adding new user %s to group(s): %s", user.name, sorted(entry[1]))
        user.groups = groups
