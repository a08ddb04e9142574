"""Errors of the warm-seat broker (settings and calendar errors are ``hubkit.services.common``'s)."""

from __future__ import annotations

from hubkit.services.common.exceptions import CalendarError, ServiceError

__all__ = ["CalendarError", "KubernetesError", "WarmSeatsError"]


class WarmSeatsError(ServiceError):
    """Base class: the message is one plain sentence for the operator."""


class KubernetesError(WarmSeatsError):
    """A Kubernetes API call failed; the message names the object and the server's answer."""
