"""The user's POSIX identity from ``auth_state["hubkit"]`` (see docs/identity.md), validated (pure)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from .exceptions import IdentityError

HOME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
GROUP_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_PATTERN = re.compile(r"^[^:\s]+:.+$", re.DOTALL)
MIN_ID, MAX_ID = 1000, 2**31


@dataclass(frozen=True)
class Identity:
    """Who a user's processes run as, and the name of their home directory."""

    key: str
    uid: int
    gid: int
    home: str
    posix_groups: dict[str, int] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """A safe, unique, stable directory name for any text (the ``home_name`` rule of docs/identity.md).

    Lower-case ``[a-z0-9-]``, at most 49 characters, never ``.``/``..``/``/``; two different texts map
    to the same name only if their SHA-256 prefixes collide.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].rstrip("-") or "x"
    return f"{slug}-{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def posix_username(name: str) -> str:
    """The login name written to /etc/passwd: the hub name when it is a valid POSIX name, else safe_name."""
    if GROUP_NAME_PATTERN.match(name):
        return name
    return safe_name(name)[:32].rstrip("-")


def _int_id(value: Any, what: str, user: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_ID <= value < MAX_ID:
        raise IdentityError(
            "Your account has no valid POSIX identity; sign out and in again, or ask your admin.",
            f"user={user} {what}={value!r}",
        )
    return value


def parse_identity(auth_state: Any, user: str) -> Identity | None:
    """The identity block of ``auth_state``, or None when there is none; raises when it is invalid."""
    block = auth_state.get("hubkit") if isinstance(auth_state, dict) else None
    if block is None:
        return None
    refuse = "Your account has no valid POSIX identity; sign out and in again, or ask your admin."
    if not isinstance(block, dict):
        raise IdentityError(refuse, f"user={user} hubkit block is {type(block).__name__}")
    key = block.get("key")
    if not isinstance(key, str) or not 3 <= len(key) <= 256 or not KEY_PATTERN.match(key):
        raise IdentityError(refuse, f"user={user} key={key!r:.80}")
    home = block.get("home")
    if not isinstance(home, str) or not HOME_PATTERN.match(home):
        raise IdentityError(
            "Your home directory name is not valid, so no server was started; ask your admin.",
            f"user={user} key={key} home={home!r:.80}",
        )
    groups = block.get("posix_groups", {})
    if not isinstance(groups, dict):
        raise IdentityError(refuse, f"user={user} posix_groups={groups!r:.80}")
    posix_groups: dict[str, int] = {}
    for name, gid in groups.items():
        if not isinstance(name, str) or not GROUP_NAME_PATTERN.match(name):
            raise IdentityError(refuse, f"user={user} posix group name {name!r:.40}")
        posix_groups[name] = _int_id(gid, f"gid of group {name}", user)
    return Identity(
        key=key,
        uid=_int_id(block.get("uid"), "uid", user),
        gid=_int_id(block.get("gid"), "gid", user),
        home=home,
        posix_groups=posix_groups,
    )


def fallback_identity(user: str, uid: int, gid: int) -> Identity:
    """The configured fixed identity for users without an identity block (home named from the hub name)."""
    return Identity(key=f"jupyterhub:{user}", uid=uid, gid=gid, home=safe_name(f"jupyterhub:{user}"))
