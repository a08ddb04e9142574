"""Errors of the culler."""

from __future__ import annotations

from hubkit.services.common.exceptions import ServiceError


class CullerError(ServiceError):
    """Base class of the culler's errors."""


class CalendarError(CullerError):
    """The hold calendar could not be read or parsed; the message names the source."""
