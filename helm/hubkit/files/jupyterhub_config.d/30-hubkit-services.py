"""HubKit hub configuration, step 3: register HubKit's services, each with the narrowest role.

The services run as their own Deployments (rendered by the HubKit chart); the hub only knows their URLs,
so their status pages are reachable at /services/<name>/. Only the culler calls the hub API: its token
comes from $HUBKIT_CULLER_API_TOKEN (the chart's hubkit-culler-token Secret, through hub.extraEnv), and
its role holds the scopes the culler itself says its settings need (hubkit-services is in the hub image;
the module is standard-library only).
"""

import os

from hubkit.services.culler.scopes import culler_scopes
from hubkit.spawner.jupyterhub_compat import service_spec

c = globals()["c"]
_services = globals()["HUBKIT_SETTINGS"].get("services", {})


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
            "scopes": culler_scopes(_services["culler"].get("settings") or {}),
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
