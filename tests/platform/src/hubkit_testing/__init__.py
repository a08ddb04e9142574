"""HubKit's hermetic test platform (not shipped)."""
