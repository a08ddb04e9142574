"""LTI Advantage Names and Role Provisioning Services 2.0: reading a course's roster from the LMS.

An access token comes from the platform's OAuth2 token endpoint (client credentials, authenticated by
the tool's signed client assertion); the roster is read page by page (``Link: <...>; rel="next"``).
Everything is read before anything is decided, so a failing page changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from .exceptions import HubKitAuthError
from .lti_launch import course_group_id, role_kind
from .tool_key import ASSERTION_TYPE, ToolKey

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIPS = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class PlatformServiceError(HubKitAuthError):
    """An LMS service (token endpoint, NRPS, AGS) failed or answered something unusable."""


@dataclass(frozen=True)
class Member:
    user_id: str
    roles: tuple[str, ...]
    status: str = "Active"  # Active | Inactive | Deleted
    email: str = ""


@dataclass(frozen=True)
class ServiceAccess:
    """How the hub reaches one platform's services as a tool."""

    client_id: str
    token_url: str
    key: ToolKey
    timeout: float = 10.0


async def access_token(http: httpx.AsyncClient, access: ServiceAccess, scopes: Iterable[str]) -> str:
    """A bearer token for ``scopes`` from the platform's token endpoint (RFC 7523 client assertion)."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": access.key.client_assertion(access.client_id, access.token_url),
        "scope": " ".join(scopes),
    }
    body = await _json(http, "POST", access.token_url, data=form)
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise PlatformServiceError(
            f"The LMS token endpoint {access.token_url} answered without an access_token."
        )
    return token


async def read_roster(http: httpx.AsyncClient, url: str, token: str, max_pages: int = 1000) -> list[Member]:
    """Every member of a course, following the ``next`` links; raises on any failing page."""
    members: list[Member] = []
    headers = {"Authorization": f"Bearer {token}", "Accept": MEMBERSHIPS}
    next_url: str | None = url
    for _ in range(max_pages):
        if next_url is None:
            return members
        response = await _request(http, "GET", next_url, headers=headers)
        body = _decode(response, next_url)
        members += [_member(m) for m in body.get("members") or []]
        match = _NEXT.search(response.headers.get("link", ""))
        next_url = match.group(1) if match else None
    raise PlatformServiceError(f"The roster at {url} has more than {max_pages} pages; it was not applied.")


def _member(entry: Any) -> Member:
    if not isinstance(entry, dict) or not isinstance(entry.get("user_id"), str):
        raise PlatformServiceError("The LMS roster holds a member without a user_id.")
    return Member(
        user_id=entry["user_id"],
        roles=tuple(str(r) for r in entry.get("roles") or []),
        status=str(entry.get("status") or "Active"),
        email=str(entry.get("email") or ""),
    )


def roster_groups(
    context_id: str, members: Iterable[Member], username_of: Callable[[Member], str | None]
) -> dict[str, set[str]]:
    """The members of each course group (``course:<ctx>:student|ta|instructor``) per the roster.

    Inactive and deleted members belong to none; members whose hub name cannot be derived are left out.
    """
    course = course_group_id(context_id)
    groups: dict[str, set[str]] = {
        f"course:{course}:{kind}": set() for kind in ("instructor", "student", "ta")
    }
    for member in members:
        if member.status != "Active":
            continue
        name = username_of(member)
        if name is None:
            continue
        for kind in {k for r in member.roles if (k := role_kind(r))}:
            groups[f"course:{course}:{kind}"].add(name)
    return groups


async def _request(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        raise PlatformServiceError(f"The LMS at {url} could not be reached: {e}") from e
    if response.status_code >= 400:
        raise PlatformServiceError(f"The LMS at {url} answered {response.status_code}: {response.text[:200]}")
    return response


async def _json(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    return _decode(await _request(http, method, url, **kwargs), url)


def _decode(response: httpx.Response, url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as e:
        raise PlatformServiceError(f"The LMS at {url} answered with something other than JSON.") from e
    if not isinstance(body, dict):
        raise PlatformServiceError(f"The LMS at {url} answered with JSON that is not an object.")
    return body
