"""Errors shared by every HubKit service."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of every error a HubKit service raises on purpose."""


class SettingsError(ServiceError):
    """The service's settings file or environment is invalid; the message says which key and why."""


class CalendarError(ServiceError):
    """An ICS calendar cannot be read or parsed at all; the message names the source.

    A single bad event is not an error: it is skipped and reported as a problem.
    """


class HubAPIError(ServiceError):
    """The hub answered a request with an error (after retries, if the error was retryable)."""

    def __init__(self, method: str, path: str, status: int | None, detail: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{method} {path}"
        what = f"answered {status}" if status is not None else "failed"
        super().__init__(f"hub API {where} {what}: {detail}")
