"""Pure rules shared by the LTI 1.1 and 1.3 launches: names, course groups and where a launch lands.

Nothing here does I/O; every rejection is a :class:`LaunchRejected` carrying one plain sentence.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from .exceptions import LaunchRejected

SAFE_CONTEXT = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
INSTRUCTOR_ROLES = {"instructor", "contentdeveloper", "administrator", "teacher", "faculty"}
TA_ROLES = {"teachingassistant"}
STUDENT_ROLES = {"learner", "student"}
INSTITUTION_MARKERS = ("urn:lti:instrole:", "urn:lti:sysrole:", "/institution/", "/system/")


@dataclass(frozen=True)
class LaunchLimits:
    """Bounds on what a launch may carry; larger requests are refused before any work is done."""

    max_parameters: int = 200
    max_parameter_length: int = 4096
    max_username_length: int = 128


def check_sizes(params: Mapping[str, str], limits: LaunchLimits) -> None:
    if len(params) > limits.max_parameters:
        raise LaunchRejected(
            f"The launch carries {len(params)} parameters, more than the {limits.max_parameters} allowed.",
            413,
        )
    for name, value in params.items():
        if len(name) > 256 or len(value) > limits.max_parameter_length:
            raise LaunchRejected(
                f"The launch parameter {name[:40]!r} is longer than "
                f"{limits.max_parameter_length} characters.",
                413,
            )


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in value)


def check_username(username: str, limits: LaunchLimits) -> str:
    """A hub username from an LMS must be short, printable and path-safe; returns it unchanged."""
    if not username or not username.strip():
        raise LaunchRejected("The launch does not say who the user is (empty user name).")
    if len(username) > limits.max_username_length:
        raise LaunchRejected(
            f"The user name from the LMS is {len(username)} characters long; at most "
            f"{limits.max_username_length} are allowed."
        )
    if has_control_characters(username):
        raise LaunchRejected("The user name from the LMS contains control characters.")
    if "/" in username or "\\" in username or ".." in username or username != username.strip():
        raise LaunchRejected("The user name from the LMS contains '/', '\\', '..' or surrounding spaces.")
    return username


def check_user_id(user_id: str) -> str:
    """The LMS's own user id becomes part of the identity key: bounded and printable."""
    if not user_id or len(user_id) > 200 or has_control_characters(user_id):
        raise LaunchRejected(
            "The LMS user id is missing, longer than 200 characters or contains control characters."
        )
    return user_id


def course_group_id(context_id: str) -> str:
    """A context id usable inside a group name: kept when plain, else a stable hash of it."""
    if SAFE_CONTEXT.match(context_id):
        return context_id
    return "h-" + hashlib.sha256(context_id.encode("utf-8")).hexdigest()[:16]


def role_kind(role: str) -> str | None:
    """``instructor``, ``ta`` or ``student`` for an LTI 1.1 or 1.3 course role; None for others."""
    role = role.strip()
    lowered = role.lower()
    if any(marker in lowered for marker in INSTITUTION_MARKERS):
        return None
    last = re.split(r"[#/]", role)[-1].lower()
    if last in TA_ROLES:
        return "ta"
    if last in INSTRUCTOR_ROLES:
        return "instructor"
    if last in STUDENT_ROLES:
        return "student"
    return None


def launch_course(context_id: str | None) -> str | None:
    """The course group id of a launch's context; None for a launch outside any course."""
    return course_group_id(context_id) if context_id else None


def course_groups(context_id: str | None, roles: Iterable[str]) -> list[str]:
    """``course:<context>:<kind>`` for every recognised role in the launch's course."""
    if not context_id:
        return []
    kinds = sorted({kind for role in roles if (kind := role_kind(role))})
    return [f"course:{course_group_id(context_id)}:{kind}" for kind in kinds]


@dataclass(frozen=True)
class TargetRequest:
    """What a launch asked to open (LTI 1.1 ``custom_*`` parameters or the LTI 1.3 custom claim)."""

    notebook: str = ""
    next_url: str = ""
    repo: str = ""
    branch: str = ""
    urlpath: str = ""


def target_request(custom: Mapping[str, str]) -> TargetRequest:
    """Read the target from custom parameters (names without the ``custom_`` prefix)."""
    return TargetRequest(
        notebook=custom.get("notebook", ""),
        next_url=custom.get("next", ""),
        repo=custom.get("nbgitpuller_repo", "") or custom.get("repo", ""),
        branch=custom.get("nbgitpuller_branch", "") or custom.get("branch", ""),
        urlpath=custom.get("nbgitpuller_urlpath", "") or custom.get("urlpath", ""),
    )


def check_git_repo(repo: str, allowed_hosts: Iterable[str]) -> None:
    parts = urlsplit(repo)
    host = (parts.hostname or "").lower()
    allowed = {h.lower() for h in allowed_hosts}
    if parts.scheme != "https" or not host or parts.username or parts.password:
        raise LaunchRejected("The nbgitpuller link must point to an https:// git repository.")
    if host not in allowed:
        raise LaunchRejected(f"The git host {host!r} is not allowed on this hub; ask its admins to allow it.")


def _check_relative_path(path: str) -> str:
    if has_control_characters(path) or "\\" in path:
        raise LaunchRejected("The notebook path in the launch contains control characters or backslashes.")
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments) or not segments:
        raise LaunchRejected("The notebook path in the launch must be a plain relative path without '..'.")
    return "/".join(segments)


def launch_target(request: TargetRequest, base_url: str, allowed_git_hosts: Iterable[str]) -> str | None:
    """The hub-relative URL a launch lands on, or None for the default (the user's server)."""
    hub = base_url.rstrip("/") + "/hub/user-redirect"
    if request.repo:
        check_git_repo(request.repo, allowed_git_hosts)
        query = {"repo": request.repo}
        if request.branch:
            query["branch"] = request.branch
        if request.urlpath:
            _check_relative_path(request.urlpath.split("?")[0])
            query["urlpath"] = request.urlpath
        return f"{hub}/git-pull?{urlencode(query)}"
    if request.notebook:
        return f"{hub}/lab/tree/{quote(_check_relative_path(request.notebook))}"
    if request.next_url:
        parts = urlsplit(request.next_url)
        if (
            parts.scheme
            or parts.netloc
            or not request.next_url.startswith("/")
            or request.next_url.startswith("//")
        ):
            raise LaunchRejected("The launch's next link must be a path on this hub, not another site.")
        if has_control_characters(request.next_url) or ".." in parts.path.split("/"):
            raise LaunchRejected("The launch's next link contains control characters or '..'.")
        if parts.path.rstrip("/").endswith("/git-pull"):
            repos = [v for k, v in _query_pairs(parts.query) if k == "repo"]
            if not repos:
                raise LaunchRejected("The nbgitpuller link in the launch names no repository.")
            for repo in repos:
                check_git_repo(repo, allowed_git_hosts)
        return request.next_url
    return None


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)
