"""Errors of the culler."""

from __future__ import annotations

from hubkit.services.common.exceptions import CalendarError, ServiceError

__all__ = ["CalendarError", "CullerError"]


class CullerError(ServiceError):
    """Base class of the culler's errors (the hold calendar's are :class:`CalendarError`, shared with the
    warm-seat broker)."""
