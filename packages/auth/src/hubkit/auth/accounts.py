"""The one place authenticators turn a provider identity into the contract block (docs/identity.md).

:class:`IdentityAuthenticatorMixin` adds the traits every HubKit authenticator shares (where the ledger
lives, the id range allocated from) and :meth:`~IdentityAuthenticatorMixin.hubkit_identity`, which
allocates or re-reads numbers, binds the hub username to the key, and returns the validated block.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tornado.web import HTTPError
from traitlets import Bool, Int, Tuple, Unicode, default
from traitlets.config import LoggingConfigurable

from . import course_membership, first_groups
from .exceptions import HubKitAuthError, IdentityError
from .identity import MAX_ID, MIN_ID, HubKitIdentity, posix_group_name
from .ledger import Admission, IdentityLedger, ledger_for

PENDING_KEY = "hubkit_pending_identity"  # auth_model key until the login is admitted; never stored


@dataclass(frozen=True)
class PendingIdentity:
    """What :meth:`IdentityAuthenticatorMixin.hubkit_identity` will write once the login is admitted.

    Authenticators put one in the auth model instead of writing at ``authenticate`` time, so a login
    that ``check_blocked_users``/``check_allowed`` refuses writes nothing to HubKit's tables.
    """

    key: str
    username: str
    numbers: tuple[int, int] | None = None
    posix_groups: Mapping[str, int] = field(default_factory=dict)
    allocated_groups: tuple[str, ...] = ()
    nonce: tuple[str, str, float] | None = None  # recorded in the same transaction (LTI launches)


def merge_course_groups(db: Any, auth_model: dict[str, Any]) -> dict[str, Any]:
    """A launch's groups merged with the user's groups of other courses (see course_membership).

    The course groups kept also keep their POSIX gids: the pending identity re-reads them.
    """
    course = auth_model.pop(course_membership.COURSE_KEY)
    current = course_membership.current_groups(db, str(auth_model["name"]))
    groups = course_membership.merged_groups(current, course, auth_model.get("groups") or [])
    pending = auth_model.get(PENDING_KEY)
    if isinstance(pending, PendingIdentity):
        courses = {*pending.allocated_groups, *filter(course_membership.is_course_group, groups)}
        auth_model[PENDING_KEY] = dataclasses.replace(pending, allocated_groups=tuple(sorted(courses)))
    return {**auth_model, "groups": groups}


def check_hub_username(username: str, max_length: int = 128) -> None:
    """Hub usernames end up in URLs, paths and pod names: printable, bounded, no ``/`` or ``..``."""
    if not username or len(username) > max_length:
        raise IdentityError(f"The user name must have 1 to {max_length} characters.")
    if any(unicodedata.category(c) == "Cc" for c in username):
        raise IdentityError("The user name contains control characters.")
    if "/" in username or "\\" in username or ".." in username:
        raise IdentityError("The user name contains '/', '\\' or '..'.")


class IdentityAuthenticatorMixin(LoggingConfigurable):
    """Traits and helpers shared by every HubKit authenticator; mix in before the upstream class."""

    hubkit_provider = "hubkit"  # the ``<provider>`` part of keys; subclasses set it
    # Upstream options HubKit cannot honour: name -> (the only accepted value, what to do instead).
    # Any other value stops the hub at start-up (docs/auth.md, "Differences from upstream").
    hubkit_refused: ClassVar[dict[str, tuple[Any, str]]] = {}
    hubkit_username_prefix = ""  # set by HubKitMultiAuthenticator when composed

    hubkit_db_url = Unicode(
        "",
        config=True,
        help="""Database URL of HubKit's identity tables (allocated uids/gids, username bindings, LTI
        nonces). Empty (the default) means the hub's own ``JupyterHub.db_url``, which is what you want:
        every hub replica then shares the same numbers and nonces.""",
    )
    id_range = Tuple(
        Int(),
        Int(),
        default_value=(2_000_000, 2_999_999),
        config=True,
        help="""Inclusive range ``(first, last)`` from which uids/gids are allocated for identities whose
        provider supplies no trustworthy POSIX numbers. Allocated numbers are stored in the hub database
        and never reused; give each provider its own range so numbers read from different places stay
        recognisable. Must lie within 1000 … 2**31-1.""",
    )
    hubkit_bind_usernames = Bool(
        True,
        config=True,
        help="""Record which identity key first used each hub username and refuse a login that would give
        that username to a different key (e.g. the same LMS user id at two consumers). Turning this off
        lets two identities share one hub account.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, (accepted, instead) in self.hubkit_refused.items():
            value = getattr(self, name)
            if value != accepted:
                raise ValueError(
                    f"{type(self).__name__}.{name} = {value!r} is not supported by HubKit: {instead}"
                )

    @default("manage_groups")
    def _default_manage_groups(self) -> bool:
        return True

    async def run_post_auth_hook(self, handler: Any, auth_model: Any) -> Any:
        # Reached only after check_blocked_users and check_allowed admitted the login.
        if self.manage_groups and course_membership.COURSE_KEY in auth_model:  # type: ignore[attr-defined]
            auth_model = merge_course_groups(getattr(handler, "db", None), auth_model)
        auth_model.pop(course_membership.COURSE_KEY, None)
        try:
            auth_model = await self.hubkit_admit(auth_model)
        except HubKitAuthError as e:
            raise self.hubkit_refusal(handler, e, auth_model) from e
        auth_model = await super().run_post_auth_hook(handler, auth_model)  # type: ignore[misc]
        if self.manage_groups:  # type: ignore[attr-defined]
            first_groups.remember(getattr(handler, "db", None), auth_model, self.log)
        return auth_model

    def _db_url(self) -> str:
        if self.hubkit_db_url:
            return str(self.hubkit_db_url)
        parent = self.parent
        while parent is not None:
            url = getattr(parent, "db_url", None)
            if isinstance(url, str) and url:
                return url
            parent = getattr(parent, "parent", None)
        return "sqlite:///jupyterhub.sqlite"

    @property
    def ledger(self) -> IdentityLedger:
        return ledger_for(self._db_url())

    def _id_range(self) -> tuple[int, int]:
        first, last = (int(x) for x in self.id_range)
        if not (MIN_ID <= first <= last < MAX_ID):
            raise ValueError(
                f"{type(self).__name__}.id_range {self.id_range!r} is outside {MIN_ID}..{MAX_ID - 1}."
            )
        return first, last + 1

    async def hubkit_identity(
        self,
        key: str,
        username: str,
        numbers: tuple[int, int] | None = None,
        posix_groups: Mapping[str, int] | None = None,
        nonce: tuple[str, str, float] | None = None,
        allocated_groups: Iterable[str] = (),
    ) -> HubKitIdentity:
        """The validated identity of ``key``: ``numbers`` (uid, gid) from the provider, else allocated.

        One database transaction records ``nonce`` (scope, value, keep seconds) if given, binds the hub
        username, allocates the uid and a gid for each of ``allocated_groups`` (hub group names whose
        provider has no numbers, e.g. ``course:<context>:student``); a replay raises NonceReused before
        anything is written. Allocated groups join ``posix_groups`` under their POSIX-safe names.
        """
        HubKitIdentity.create(key, MIN_ID, MIN_ID)  # validates the key before anything is written
        check_hub_username(username)
        bound = self.hubkit_username_prefix + username if self.hubkit_bind_usernames else None
        owners = {f"group:{name}": name for name in sorted(set(allocated_groups))}
        admission = Admission(
            key, bound, self._id_range(), allocate=numbers is None, nonce=nonce, groups=tuple(owners)
        )
        admitted = await self.ledger.aadmit(admission)
        if numbers is None:
            assert admitted.uid is not None
            numbers = (admitted.uid, admitted.uid)
        groups = dict(posix_groups or {})
        groups.update({posix_group_name(owners[o]): gid for o, gid in admitted.gids.items()})
        return HubKitIdentity.create(key, numbers[0], numbers[1], groups)

    def hubkit_refusal(self, handler: Any, error: HubKitAuthError, auth_model: dict[str, Any]) -> HTTPError:
        """The HTTP error for a login refused while its identity was written (a taken name: 403)."""
        self.log.warning("%s login of %r refused: %s", self.hubkit_provider, auth_model.get("name"), error)
        return HTTPError(403, str(error))

    def hubkit_pending(
        self,
        key: str,
        username: str,
        numbers: tuple[int, int] | None = None,
        posix_groups: Mapping[str, int] | None = None,
        allocated_groups: Iterable[str] = (),
        nonce: tuple[str, str, float] | None = None,
    ) -> PendingIdentity:
        """A validated identity to write once the login is admitted (see :meth:`hubkit_admit`)."""
        HubKitIdentity.create(key, MIN_ID, MIN_ID)
        check_hub_username(username)
        groups = tuple(sorted(allocated_groups))
        return PendingIdentity(key, username, numbers, dict(posix_groups or {}), groups, nonce)

    async def hubkit_admit(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Write the model's pending identity (one transaction) and add the contract block to auth_state.

        Call only for an admitted login: the post-auth hook does, and ``refresh_user`` after its checks.
        """
        pending = auth_model.pop(PENDING_KEY, None)
        if not isinstance(pending, PendingIdentity):
            return auth_model
        identity = await self.hubkit_identity(
            pending.key,
            pending.username,
            pending.numbers,
            pending.posix_groups,
            nonce=pending.nonce,
            allocated_groups=pending.allocated_groups,
        )
        auth_model["auth_state"] = self.hubkit_auth_state(identity, auth_model.get("auth_state") or {})
        return auth_model

    def hubkit_auth_state(self, identity: HubKitIdentity, extra: Mapping[str, Any]) -> dict[str, Any]:
        """auth_state with the contract block under ``"hubkit"`` and provider data beside it."""
        return {**extra, "hubkit": identity.to_auth_state()}
