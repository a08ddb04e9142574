"""Plumbing shared by HubKit's hub-managed services.

- :func:`run_service` / :class:`ServiceCommand` / :class:`Running`: the one command line (arguments,
  logging, settings, status server, signals, exit codes) every service's ``main`` is built on.
- :class:`ServiceSettings` / :func:`load_settings`: typed settings from a YAML/JSON file and the
  environment, rejecting unknown keys.
- :class:`StatusServer`: ``/health``, ``/status`` and ``/metrics``.
- :class:`HubClient`: the hub REST API with retries, backoff, bounded concurrency and paging.
- :mod:`.calendar`: sessions from an ICS calendar (recurrences, moved and cancelled sessions).
- :func:`hub_service_env`: the token, API URL and prefix JupyterHub gives a managed service.
- :mod:`.kube_runtime`, :mod:`.kube_builders`: the Kubernetes-facing services' client, watch caches and
  PriorityClass (imported from there, so the hub-facing services never load the Kubernetes client).
"""

from .cli import EXIT_FAILED, EXIT_OK, EXIT_SETTINGS, Running, ServiceCommand, run_service, setup_logging
from .exceptions import CalendarError, HubAPIError, ServiceError, SettingsError
from .httpserver import HealthCallback, StatusCallback, StatusServer
from .hubapi import HubClient, HubClientStats, RetryPolicy
from .runtime import HubServiceEnv, hub_service_env, listen_address
from .settings import ServiceSettings, load_settings

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_SETTINGS",
    "CalendarError",
    "HealthCallback",
    "HubAPIError",
    "HubClient",
    "HubClientStats",
    "HubServiceEnv",
    "RetryPolicy",
    "Running",
    "ServiceCommand",
    "ServiceError",
    "ServiceSettings",
    "SettingsError",
    "StatusCallback",
    "StatusServer",
    "hub_service_env",
    "listen_address",
    "load_settings",
    "run_service",
    "setup_logging",
]
