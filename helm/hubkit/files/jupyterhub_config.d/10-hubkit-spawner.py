"""HubKit hub configuration, step 1: HubKitSpawner, and the shared warm-seat scheduler if one is named.

Every other spawner option (profiles, storage, identity) is plain traitlets configuration: put it in the
z2jh values under ``jupyterhub.hub.config.HubKitSpawner``.
"""

c = globals()["c"]  # the traitlets config object JupyterHub loads this file with
_settings = globals()["HUBKIT_SETTINGS"]

c.JupyterHub.spawner_class = "hubkit"
if _settings.get("scheduler_name"):
    # Placeholders and every hub's user pods share one scheduler (docs/warmseats.md).
    c.KubeSpawner.scheduler_name = _settings["scheduler_name"]
