"""Plumbing shared by HubKit's hub-managed services.

- :class:`ServiceSettings` / :func:`load_settings`: typed settings from a YAML/JSON file and the
  environment, rejecting unknown keys.
- :class:`HubClient`: the hub REST API with retries, backoff, bounded concurrency and paging.
- :class:`ServiceHTTPServer`: ``/metrics`` and ``/health``.
- :func:`hub_service_env`: the token, API URL and prefix JupyterHub gives a managed service.
"""

from .exceptions import HubAPIError, ServiceError, SettingsError
from .httpserver import HealthCallback, ServiceHTTPServer
from .hubapi import HubClient, HubClientStats, RetryPolicy
from .runtime import HubServiceEnv, hub_service_env, setup_logging
from .settings import ServiceSettings, load_settings

__all__ = [
    "HealthCallback",
    "HubAPIError",
    "HubClient",
    "HubClientStats",
    "HubServiceEnv",
    "RetryPolicy",
    "ServiceError",
    "ServiceHTTPServer",
    "ServiceSettings",
    "SettingsError",
    "hub_service_env",
    "load_settings",
    "setup_logging",
]
