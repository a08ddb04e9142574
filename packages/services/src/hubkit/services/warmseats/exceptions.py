"""Errors of the warm-seat broker (settings errors are ``hubkit.services.common.SettingsError``)."""

from __future__ import annotations

from hubkit.services.common import ServiceError


class WarmSeatsError(ServiceError):
    """Base class: the message is one plain sentence for the operator."""


class CalendarError(WarmSeatsError):
    """The ICS calendar cannot be read or parsed at all (single bad events are skipped and logged)."""


class KubernetesError(WarmSeatsError):
    """A Kubernetes API call failed; the message names the object and the server's answer."""
