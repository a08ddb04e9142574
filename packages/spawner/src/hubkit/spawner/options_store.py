"""Keep refused server options out of the hub database.

JupyterHub writes the ``user_options`` of a start request (a REST body, the admin panel, a form) to its
database before the spawner sees them, and every later start that sends none reuses the saved value.
A refused value saved there would refuse every later start too. So:

- :func:`install_guard` puts a guard on ``orm.Spawner.user_options``: a value that is not a small
  object of short texts (:func:`check_shape`) never reaches the database; the saved value stays. The
  guard also remembers, per server, the value it replaced and that the value is new (:func:`take_new`).
- the spawner validates a new value fully when it starts and, if refused, puts the previous value back
  (:func:`restore`); a saved value that no longer validates is dropped (:func:`drop`), so the next start
  works with the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyterhub import orm
from sqlalchemy import event
from traitlets.log import get_logger

from .exceptions import SpawnRefused
from .profiles import check_shape

_NEW = "_hubkit_new_user_options"


@dataclass(frozen=True)
class NewOptions:
    """A value written by this request, and the saved value it replaced (for :func:`restore`)."""

    previous: dict[str, Any]


def _owner(target: Any) -> str:
    user = getattr(target, "user", None)
    name = getattr(target, "name", "") or ""
    return f"{getattr(user, 'name', '?')}" + (f":{name}" if name else "")


def _saved(value: Any) -> dict[str, Any]:
    """A previously saved value that may stay (anything else counts as nothing saved)."""
    if not isinstance(value, dict):
        return {}
    try:
        return check_shape(value)
    except SpawnRefused:
        return {}


def _guard(target: Any, value: Any, oldvalue: Any, initiator: Any) -> Any:
    previous = _saved(oldvalue)
    setattr(target, _NEW, NewOptions(previous))
    if value is None:
        return value
    try:
        check_shape(value)
    except SpawnRefused as e:
        get_logger().warning(
            "Not saving the server options of %s: %s [%s]; the saved options stay",
            _owner(target),
            e.user_message,
            e.log_context,
        )
        return previous
    return value


def install_guard() -> None:
    """Guard ``orm.Spawner.user_options`` (once per process; safe to call again)."""
    if not event.contains(orm.Spawner.user_options, "set", _guard):
        event.listen(orm.Spawner.user_options, "set", _guard, retval=True, active_history=True)


def take_new(orm_spawner: Any) -> NewOptions | None:
    """Whether the value of ``orm_spawner`` was written since the last start (and forget it)."""
    new: NewOptions | None = getattr(orm_spawner, _NEW, None)
    if new is not None:
        setattr(orm_spawner, _NEW, None)
    return new


def _write(orm_spawner: Any, db: Any, value: dict[str, Any]) -> None:
    orm_spawner.user_options = value
    setattr(orm_spawner, _NEW, None)
    if db is not None:
        db.commit()


def restore(orm_spawner: Any, db: Any, new: NewOptions) -> dict[str, Any]:
    """Put back the value a refused new one replaced; returns it."""
    _write(orm_spawner, db, dict(new.previous))
    return dict(new.previous)


def drop(orm_spawner: Any, db: Any) -> None:
    """Forget a saved value that no longer validates."""
    _write(orm_spawner, db, {})
