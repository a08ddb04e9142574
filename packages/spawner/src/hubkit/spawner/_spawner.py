"""The hub-facing spawner class."""

from kubespawner import KubeSpawner


class HubKitSpawner(KubeSpawner):  # type: ignore[misc]  # KubeSpawner is untyped
    """KubeSpawner with HubKit's profile access rules, identity and storage layout.

    Every upstream ``KubeSpawner`` option keeps working unchanged; HubKit's own options are
    documented in ``docs/spawner.md``.
    """
