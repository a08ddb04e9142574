"""Exceptions of hubkit-spawner, one per layer.

``SpawnRefused`` carries the one plain sentence a user sees (``user_message``) and the context an admin
needs in the log (``log_context``). The spawner converts it to a 400 ``web.HTTPError`` at the boundary.
"""

from __future__ import annotations


class HubKitSpawnerError(Exception):
    """Base class of every hubkit-spawner error."""


class SpawnRefused(HubKitSpawnerError):
    """A spawn request the user may not make, or that cannot be satisfied as asked.

    ``user_message`` is one plain sentence that says what to do instead; ``log_context`` names the
    offending profile/option/value for the admin's log. ``reason`` labels the refusal in
    ``jupyterhub_server_spawn_duration_seconds`` on JupyterHub 6.
    """

    reason = "hubkit-refused"

    def __init__(self, user_message: str, log_context: str = "") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.log_context = log_context


class IdentityError(SpawnRefused):
    """The user's ``auth_state["hubkit"]`` block is missing or invalid."""

    reason = "hubkit-identity"


class ConfigError(HubKitSpawnerError):
    """The admin's configuration is invalid (reported at load, never shown to users verbatim)."""


class ProvisioningError(HubKitSpawnerError):
    """The home provisioner could not create or verify a home directory."""


class KubernetesStorageError(HubKitSpawnerError):
    """A Kubernetes API call of the storage layer failed."""


class GpuUnavailable(HubKitSpawnerError):
    """A GPU pod could not be scheduled in time; the message is the plain sentence the user reads."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message
