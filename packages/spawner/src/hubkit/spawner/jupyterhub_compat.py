"""What HubKit uses of JupyterHub 6 where it runs on it, and how it degrades on 5.x (5.3 and later).

z2jh 4.4.0 ships JupyterHub 5.5; HubKit supports >=5.3,<7. The differences HubKit meets live here and
nowhere else, detected by feature (what the installed JupyterHub has), not by version number:

- ``SpawnException`` (6.0): a refusal raised as one is labelled ``status="failure", reason=<reason>`` in
  ``jupyterhub_server_spawn_duration_seconds``. On 5.x the refusal is a plain 400 ``HTTPError`` (the metric
  has only a ``status`` label there, and a 4xx counts as a failure).
- the service spec's ``timeout`` (6.0: how long the hub waits for an external service at start). 5.x
  refuses the key ("No such service field"), so it is left out and 5.x's fixed wait applies.
"""

from __future__ import annotations

from typing import Any

from jupyterhub import spawner as _hub_spawner
from jupyterhub.services.service import Service
from tornado import web

# None on JupyterHub 5.x.
_SpawnException: Any = getattr(_hub_spawner, "SpawnException", None)  # an HTTPError subclass

HAS_SPAWN_EXCEPTION = _SpawnException is not None
HAS_SERVICE_TIMEOUT = Service.class_traits().get("timeout") is not None


def spawn_refusal(message: str, reason: str, log_message: str = "") -> web.HTTPError:
    """The 400 a refused spawn becomes: a ``SpawnException`` labelled ``reason`` where JupyterHub has it.

    ``message`` is what the user sees (plain text, shown as-is); ``log_message`` adds context for the log.
    """
    http: web.HTTPError
    if _SpawnException is not None:
        http = _SpawnException(message, reason=reason, log_message=log_message or message)
    else:
        http = web.HTTPError(400, (log_message or message).replace("%", "%%"))
    http.jupyterhub_message = message  # type: ignore[attr-defined]  # what the hub's pages show the user
    return http


def service_spec(name: str, url: str, startup_wait_seconds: int, **fields: Any) -> dict[str, Any]:
    """A ``JupyterHub.services`` entry for an external service; ``timeout`` only where JupyterHub has it."""
    spec: dict[str, Any] = {"name": name, "url": url, **fields}
    if HAS_SERVICE_TIMEOUT:
        spec["timeout"] = startup_wait_seconds
    return spec
