"""Exceptions of hubkit-auth.

Each carries one plain sentence meant for the person who sees it; handlers turn them into HTTP errors
(``raise HTTPError(...) from e``) and log the context separately.
"""

from __future__ import annotations


class HubKitAuthError(Exception):
    """Base class: the message is one plain sentence a user or admin can act on."""


class IdentityError(HubKitAuthError):
    """An identity block (``auth_state["hubkit"]``) does not satisfy the contract."""


class AllocationError(HubKitAuthError):
    """A POSIX id could not be allocated (range exhausted, database unreachable)."""


class NonceReused(HubKitAuthError):
    """A launch nonce was seen before: the launch is a replay."""


class UsernameTakenError(HubKitAuthError):
    """A hub username is already bound to a different identity key."""


class LaunchRejected(HubKitAuthError):
    """An LTI launch failed validation; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
