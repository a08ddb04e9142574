"""hubkit-services: hub-managed services for HubKit deployments."""

__all__: list[str] = []
