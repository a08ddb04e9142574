"""hubkit-spawner: a KubeSpawner for course and research hubs."""

from ._spawner import HubKitSpawner

__all__ = ["HubKitSpawner"]
