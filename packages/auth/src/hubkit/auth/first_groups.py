"""A new user's managed groups, written in the same commit that creates the user.

With ``manage_groups`` on, JupyterHub calls ``User.sync_groups`` after every login. For a brand-new
user (every student's first LTI launch) that means one more query per login, two eager loads per
group (its roles and shares), a lazy load of the user's (empty) groups, a second ORM flush and one
more durable commit right after the one that created the user.

HubKit remembers the groups of a successful login's auth model (post-auth hook) and listens to the
hub's database session (SQLAlchemy's public session events). In the flush that inserts that new
``User`` row, the user's groups are looked up (created if missing) and its membership rows are
written into the association table of JupyterHub's ``User.groups`` relationship, read from the
mapper rather than named here; the user's ``groups`` collection is then set as loaded, and any
loaded ``Group.users`` collection is expired, so the session and the database agree. This avoids
the unit of work's many-to-many bookkeeping, which on a busy hub costs more than the rows
themselves. The groups' roles and shares stay lazily loaded (loaded on first use, never wrongly
empty). ``sync_groups`` then finds nothing left to change, and handles every later change as
before. A login of an existing user never reaches the hook; its entry just expires.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

from jupyterhub import orm
from sqlalchemy import Insert, bindparam, event, insert, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

FRESH_SECONDS = 30.0  # a login and the creation of its user happen within one request
MAX_PENDING = 10_000
_LISTENING = "hubkit_first_groups"  # Session.info key: the hooks are installed on this session
_JOINING = "hubkit_joining"  # Session.info key: new users of the current flush → their groups

Logger = logging.Logger | logging.LoggerAdapter[Any]
_pending: dict[str, tuple[float, frozenset[str]]] = {}
# Group ids by name, then the Group objects from the session's identity map (no SQL for groups the
# session already holds); a group loaded here keeps its roles and shares lazy.
_GROUP_IDS = select(orm.Group.id, orm.Group.name).where(
    orm.Group.name.in_(bindparam("names", expanding=True))
)
_LAZY = (lazyload(orm.Group.roles), lazyload(orm.Group.shared_with_me))


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
        event.listen(db, "before_flush", lambda session, _ctx, _objs: find_groups(session, log))
        event.listen(db, "after_flush", lambda session, _ctx: join_groups(session, log))


def _stale(entry: tuple[float, frozenset[str]], now: float) -> bool:
    return now - entry[0] > FRESH_SECONDS


def find_groups(session: Session, log: Logger) -> None:
    """``before_flush``: look up (or add) the groups of every new User with remembered groups."""
    session.info.pop(_JOINING, None)  # left over only by a flush that failed
    if not _pending:
        return
    joining: list[tuple[orm.User, list[orm.Group]]] = []
    for user in [o for o in session.new if isinstance(o, orm.User)]:
        entry = _pending.pop(user.name, None)
        if entry is None or _stale(entry, time.monotonic()) or not entry[1]:
            continue
        if "groups" in inspect(user).dict:  # someone already set this user's groups: the ORM writes them
            continue
        try:
            with session.no_autoflush:
                groups = existing_groups(session, entry[1])
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
        joining.append((user, groups))
    if joining:
        session.info[_JOINING] = joining


def existing_groups(session: Session, names: frozenset[str]) -> list[orm.Group]:
    """The groups among ``names`` that exist, from the identity map where the session holds them."""
    found = session.connection().execute(_GROUP_IDS, {"names": sorted(names)}).all()
    groups = (session.get(orm.Group, group_id, options=_LAZY) for group_id, _name in found)
    return [g for g in groups if g is not None]


@functools.cache
def _membership() -> tuple[Insert, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The association table behind ``User.groups``: its insert and which attribute fills each column."""
    rel = inspect(orm.User).relationships["groups"]
    assert rel.secondary is not None

    def pairs(cls: type, sync: Any) -> tuple[tuple[str, str], ...]:
        return tuple((col.key, inspect(cls).get_property_by_column(src).key) for src, col in sync)

    return (
        insert(rel.secondary),
        pairs(orm.User, rel.synchronize_pairs),
        pairs(orm.Group, rel.secondary_synchronize_pairs),
    )


def membership_rows(users_groups: list[tuple[orm.User, list[orm.Group]]]) -> list[dict[str, Any]]:
    """Rows of the association table behind ``User.groups``, with its columns read from the mapper."""
    _insert, user_pairs, group_pairs = _membership()
    rows = []
    for user, groups in users_groups:
        mine = {column: getattr(user, attr) for column, attr in user_pairs}
        rows += [mine | {column: getattr(group, attr) for column, attr in group_pairs} for group in groups]
    return rows


def join_groups(session: Session, log: Logger) -> None:
    """``after_flush``: the memberships of the users found before this flush, in its transaction."""
    joining: list[tuple[orm.User, list[orm.Group]]] | None = session.info.pop(_JOINING, None)
    if not joining:
        return
    session.connection().execute(_membership()[0], membership_rows(joining))
    for user, groups in joining:
        log.info("Adding new user %s to group(s): %s", user.name, sorted(g.name for g in groups))
        set_committed_value(user, "groups", groups)
        for group in groups:
            if "users" in inspect(group).dict:  # a loaded member list: reload it when next read
                session.expire(group, ["users"])
