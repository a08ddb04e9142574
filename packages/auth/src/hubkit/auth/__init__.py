"""hubkit-auth: authenticators that share one identity contract (``auth_state["hubkit"]``)."""

__all__: list[str] = []
