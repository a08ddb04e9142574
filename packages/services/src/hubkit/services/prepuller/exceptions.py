"""Errors of the prepuller (settings errors are ``hubkit.services.common.SettingsError``)."""

from __future__ import annotations

from hubkit.services.common import ServiceError


class PrepullerError(ServiceError):
    """Base class: the message is one plain sentence for the operator."""


class KubernetesError(PrepullerError):
    """A Kubernetes API call failed; the message names the object and the server's answer."""
