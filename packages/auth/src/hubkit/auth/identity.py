"""The identity contract ``auth_state["hubkit"]`` (docs/identity.md): typed model, validation, home_name.

This is the only place that knows the contract's rules; authenticators build a :class:`HubKitIdentity`
and store :meth:`HubKitIdentity.to_auth_state`, the spawner reads it back with :meth:`from_auth_state`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import IdentityError

AUTH_STATE_KEY = "hubkit"
MIN_ID = 1000
MAX_ID = 2**31  # exclusive
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]*:.+$", re.DOTALL)
HOME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")
GROUP_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def home_name(key: str) -> str:
    """The home directory name of ``key``: a 40-character slug, ``-``, 8 hex digits of sha256(key)."""
    slug = _NOT_SLUG.sub("-", key.lower()).strip("-")[:40].rstrip("-") or "x"
    return f"{slug}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]}"


def posix_group_name(name: str) -> str:
    """A POSIX group name for an arbitrary provider group name (lower-cased, unsafe runs → ``-``).

    Names that would not fit ``^[a-z_][a-z0-9_-]{0,31}$`` get a short hash suffix, keeping them distinct.
    """
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    if slug and not slug[0].isalpha() and slug[0] != "_":
        slug = "g-" + slug
    if GROUP_NAME_PATTERN.match(slug) and slug == name:
        return slug
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:6]
    return f"{(slug or 'g')[:25].rstrip('-')}-{digest}"


def _check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_ID <= value < MAX_ID:
        raise IdentityError(f"The {name} {value!r} is not a POSIX id between {MIN_ID} and {MAX_ID - 1}.")
    return value


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not 3 <= len(key) <= 256 or not KEY_PATTERN.match(key):
        raise IdentityError(f"The identity key {key!r} is not '<provider>:<id>' of 3 to 256 characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise IdentityError("The identity key contains control characters.")
    return key


@dataclass(frozen=True)
class HubKitIdentity:
    """Who a hub user is at the POSIX level. Construct through :meth:`create` to get ``home`` derived."""

    key: str
    uid: int
    gid: int
    posix_groups: Mapping[str, int] = field(default_factory=dict)
    home: str = ""

    def __post_init__(self) -> None:
        _check_key(self.key)
        _check_id("uid", self.uid)
        _check_id("gid", self.gid)
        if not isinstance(self.posix_groups, Mapping):
            raise IdentityError("posix_groups must map group names to gids.")
        for name, gid in self.posix_groups.items():
            if not isinstance(name, str) or not GROUP_NAME_PATTERN.match(name):
                raise IdentityError(
                    f"The POSIX group name {name!r} does not match {GROUP_NAME_PATTERN.pattern}."
                )
            _check_id(f"gid of group {name!r}", gid)
        if self.home != home_name(self.key):
            raise IdentityError(f"The home {self.home!r} is not the home name derived from {self.key!r}.")

    @classmethod
    def create(
        cls, key: str, uid: int, gid: int, posix_groups: Mapping[str, int] | None = None
    ) -> HubKitIdentity:
        """Build and validate an identity; ``home`` is always ``home_name(key)``."""
        return cls(
            key=_check_key(key), uid=uid, gid=gid, posix_groups=dict(posix_groups or {}), home=home_name(key)
        )

    @property
    def provider(self) -> str:
        return self.key.split(":", 1)[0]

    def to_auth_state(self) -> dict[str, Any]:
        """The JSON block stored under ``auth_state["hubkit"]``."""
        return {
            "key": self.key,
            "uid": self.uid,
            "gid": self.gid,
            "posix_groups": dict(sorted(self.posix_groups.items())),
            "home": self.home,
        }

    @classmethod
    def from_auth_state(cls, auth_state: Mapping[str, Any] | None) -> HubKitIdentity:
        """Read and re-validate the block from a user's auth_state (raises IdentityError when unusable)."""
        block = (auth_state or {}).get(AUTH_STATE_KEY)
        if not isinstance(block, Mapping):
            raise IdentityError("The user has no HubKit identity; log out and log in again.")
        unknown = set(block) - {"key", "uid", "gid", "posix_groups", "home"}
        if unknown:
            raise IdentityError(f"The HubKit identity has unknown fields: {', '.join(sorted(unknown))}.")
        try:
            return cls(
                key=block["key"],
                uid=block["uid"],
                gid=block["gid"],
                posix_groups=dict(block.get("posix_groups") or {}),
                home=block["home"],
            )
        except KeyError as e:
            raise IdentityError(f"The HubKit identity lacks the field {e.args[0]!r}.") from e
