"""What JupyterHub hands a managed service: the hub API URL and token, its prefix and its URL."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from .exceptions import SettingsError

__all__ = ["HubServiceEnv", "hub_service_env", "listen_address"]


@dataclass(frozen=True)
class HubServiceEnv:
    """The hub API URL and token, and where the service should listen (from its hub ``url``)."""

    api_url: str
    api_token: str
    prefix: str
    bind_host: str | None
    bind_port: int | None


def hub_service_env(env: Mapping[str, str] | None = None) -> HubServiceEnv:
    """Read ``JUPYTERHUB_API_URL``/``_API_TOKEN``/``_SERVICE_PREFIX``/``_SERVICE_URL``."""
    environ = os.environ if env is None else env
    token = environ.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise SettingsError(
            "JUPYTERHUB_API_TOKEN is not set: run this service from c.JupyterHub.services or give it a token"
        )
    host, port = _service_url(environ)
    return HubServiceEnv(
        api_url=environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
        api_token=token,
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"),
        bind_host=host,
        bind_port=port,
    )


def _service_url(environ: Mapping[str, str]) -> tuple[str | None, int | None]:
    service_url = environ.get("JUPYTERHUB_SERVICE_URL", "")
    if not service_url:
        return None, None
    parsed = urlparse(service_url)
    return parsed.hostname, parsed.port


def listen_address(
    listen: str | None, default: tuple[str, int] | None, env: Mapping[str, str] | None = None
) -> tuple[str, int] | None:
    """Where the status server listens: ``listen`` ("host:port") if set, else the ``url`` the hub gave
    the service (``JUPYTERHUB_SERVICE_URL``), else ``default`` (None: no status server)."""
    if listen:
        host, port = listen.rsplit(":", 1)
        return host, int(port)
    hub_host, hub_port = _service_url(os.environ if env is None else env)
    if hub_host and hub_port:
        return hub_host, hub_port
    return default
