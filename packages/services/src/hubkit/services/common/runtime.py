"""What JupyterHub hands a managed service, and logging set up the same way for every service."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from .exceptions import SettingsError

__all__ = ["HubServiceEnv", "hub_service_env", "setup_logging"]


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
    service_url = environ.get("JUPYTERHUB_SERVICE_URL", "")
    parsed = urlparse(service_url) if service_url else None
    return HubServiceEnv(
        api_url=environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
        api_token=token,
        prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"),
        bind_host=parsed.hostname if parsed else None,
        bind_port=parsed.port if parsed else None,
    )


def setup_logging(name: str, debug: bool = False) -> logging.Logger:
    """One line per event, with a timestamp and the service name: what ends up in the hub's log."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format=f"[%(levelname)1.1s %(asctime)s {name}] %(message)s",
    )
    return logging.getLogger(name)
