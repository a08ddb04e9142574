"""HubKit hub configuration, step 1: HubKitSpawner, the shared warm-seat scheduler if one is named, and the
spawner's view of the services this release runs.

Every other spawner option (profiles, storage, identity) is plain traitlets configuration: put it in the
z2jh values under ``jupyterhub.hub.config.HubKitSpawner``.
"""

c = globals()["c"]  # the traitlets config object JupyterHub loads this file with
_settings = globals()["HUBKIT_SETTINGS"]
_services = _settings.get("services", {})

c.JupyterHub.spawner_class = "hubkit"
if _settings.get("scheduler_name"):
    # Placeholders and every hub's user pods share one scheduler (docs/warmseats.md).
    c.KubeSpawner.scheduler_name = _settings["scheduler_name"]

# The spawn form marks images the prepuller has not pulled everywhere yet (its GET /status), and a spawn is
# refused while the keepalive reports the homes unhealthy (its GET /health). A URL set in hub.config wins:
# that is how a hub points at the prepuller of another release (seed 001's hubkit-system).
for _key, _trait, _path in (
    ("prepuller", "prepuller_status_url", "/status"),
    ("nfs_keepalive", "nfs_keepalive_url", "/health"),
):
    if _key in _services and _trait not in c.HubKitSpawner:
        setattr(c.HubKitSpawner, _trait, _services[_key]["url"].rstrip("/") + _path)
