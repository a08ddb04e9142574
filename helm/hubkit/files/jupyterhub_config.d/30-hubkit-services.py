"""HubKit hub configuration, step 3: register HubKit's services, each with the narrowest role.

The services run as their own Deployments (rendered by the HubKit chart); the hub only knows their URLs,
so their status pages are reachable at /services/<name>/. Only the culler calls the hub API: its token
comes from $HUBKIT_CULLER_API_TOKEN (the chart's hubkit-culler-token Secret, through hub.extraEnv).
"""

import os

from hubkit.spawner.jupyterhub_compat import service_spec

c = globals()["c"]
_services = globals()["HUBKIT_SETTINGS"].get("services", {})


def _culler_scopes(settings: dict) -> list:
    """The scopes docs/services.md lists, minus those the culler's settings do not need."""
    scopes = ["list:users", "read:users:name", "read:users:activity", "read:servers", "delete:servers"]
    rules = settings.get("idle_rules") or []
    if settings.get("calendar") or any(rule.get("groups") for rule in rules):
        scopes.append("read:users:groups")
    if (settings.get("users") or {}).get("inactive_days"):
        scopes.append("admin:users")
    return scopes


# The services are status endpoints, not something the hub needs: never hold a hub (re)start for long
# because one of them is down (JupyterHub 6 waits up to `timeout` seconds for each external service; 5.x
# has no such key and service_spec leaves it out).
_STARTUP_WAIT_SECONDS = 5
_registered = []
_roles = []
if "culler" in _services:
    token = os.environ.get("HUBKIT_CULLER_API_TOKEN", "")
    if not token:
        raise ValueError(
            "HubKit: the culler is enabled but HUBKIT_CULLER_API_TOKEN is not set in the hub's environment; "
            "add it from the hubkit-culler-token Secret with jupyterhub.hub.extraEnv"
        )
    _registered.append(
        service_spec("hubkit-culler", _services["culler"]["url"], _STARTUP_WAIT_SECONDS, api_token=token)
    )
    _roles.append(
        {
            "name": "hubkit-culler",
            "scopes": _culler_scopes(_services["culler"].get("settings") or {}),
            "services": ["hubkit-culler"],
        }
    )
for _key, _name in (
    ("nfs_keepalive", "hubkit-nfs-keepalive"),
    ("prepuller", "hubkit-prepuller"),
    ("warmseats", "hubkit-warmseats"),
):
    if _key in _services:  # no hub API access: no token, no role
        _registered.append(service_spec(_name, _services[_key]["url"], _STARTUP_WAIT_SECONDS))

# Keep services and roles set by earlier configuration (z2jh's own, hub.services values).
if _registered:
    c.JupyterHub.services = list(c.JupyterHub.get("services", [])) + _registered
if _roles:
    c.JupyterHub.load_roles = list(c.JupyterHub.get("load_roles", [])) + _roles
