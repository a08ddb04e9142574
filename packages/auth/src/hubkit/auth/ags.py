"""LTI Advantage Assignment and Grade Services 2.0: posting a score to the LMS gradebook.

``ScoreRequest.from_json`` checks what a grader posts (one plain sentence per refusal); ``post_score``
finds the line item of the resource link (creating it when the LMS has none) and posts the score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from .exceptions import LaunchRejected
from .nrps import PlatformServiceError, ServiceAccess, _json, _request, access_token

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
ACTIVITY = ("Initialized", "Started", "InProgress", "Submitted", "Completed")
GRADING = ("FullyGraded", "Pending", "PendingManual", "Failed", "NotReady")
GRADE_SCOPE = "custom:hubkit-grades:post"  # a JupyterHub custom scope for grading services


@dataclass(frozen=True)
class ScoreRequest:
    user: str
    context_id: str
    resource_link_id: str
    score_given: float
    score_maximum: float
    activity_progress: str = "Completed"
    grading_progress: str = "FullyGraded"
    label: str = ""

    @classmethod
    def from_json(cls, body: Any) -> ScoreRequest:
        if not isinstance(body, dict):
            raise LaunchRejected("The request body must be a JSON object.")
        missing = [
            k
            for k in ("user", "context_id", "resource_link_id", "score_given", "score_maximum")
            if k not in body
        ]
        if missing:
            raise LaunchRejected(f"The score lacks {', '.join(missing)}.")
        try:
            given, maximum = float(body["score_given"]), float(body["score_maximum"])
        except (TypeError, ValueError) as e:
            raise LaunchRejected("score_given and score_maximum must be numbers.") from e
        if not maximum > 0 or not 0 <= given <= maximum:
            raise LaunchRejected(
                f"The score {given:g} is out of range: it must be between 0 and score_maximum ({maximum:g})."
            )
        request = cls(
            user=str(body["user"]),
            context_id=str(body["context_id"]),
            resource_link_id=str(body["resource_link_id"]),
            score_given=given,
            score_maximum=maximum,
            activity_progress=str(body.get("activity_progress", "Completed")),
            grading_progress=str(body.get("grading_progress", "FullyGraded")),
            label=str(body.get("label", "")),
        )
        if request.activity_progress not in ACTIVITY or request.grading_progress not in GRADING:
            raise LaunchRejected(
                f"activity_progress must be one of {', '.join(ACTIVITY)}; "
                f"grading_progress one of {', '.join(GRADING)}."
            )
        return request


@dataclass(frozen=True)
class CourseGrades:
    """Where a course's line items live at its platform (from the AGS claim of a launch)."""

    issuer: str
    client_id: str
    lineitems_url: str


async def post_score(
    access: ServiceAccess, course: CourseGrades, lms_user_id: str, score: ScoreRequest
) -> str:
    """Post ``score`` for ``lms_user_id``; returns the line item URL (created when missing)."""
    async with httpx.AsyncClient(timeout=access.timeout) as http:
        token = await access_token(http, access, [LINEITEM_SCOPE, SCORE_SCOPE])
        auth = {"Authorization": f"Bearer {token}"}
        found = await _request(
            http,
            "GET",
            _with_query(course.lineitems_url, {"resource_link_id": score.resource_link_id}),
            headers=auth | {"Accept": LINEITEMS},
        )
        items = found.json()
        if not isinstance(items, list):
            raise PlatformServiceError(f"The LMS line items at {course.lineitems_url} are not a list.")
        if items:
            lineitem = str(items[0]["id"])
        else:
            item = {
                "scoreMaximum": score.score_maximum,
                "label": score.label or score.resource_link_id,
                "resourceLinkId": score.resource_link_id,
            }
            created = await _json(
                http, "POST", course.lineitems_url, json=item, headers=auth | {"Content-Type": LINEITEM}
            )
            lineitem = str(created["id"])
        body = {
            "userId": lms_user_id,
            "scoreGiven": score.score_given,
            "scoreMaximum": score.score_maximum,
            "activityProgress": score.activity_progress,
            "gradingProgress": score.grading_progress,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        await _request(http, "POST", _scores_url(lineitem), json=body, headers=auth | {"Content-Type": SCORE})
        return lineitem


def _with_query(url: str, query: dict[str, str]) -> str:
    parts = urlsplit(url)
    joined = "&".join(q for q in (parts.query, urlencode(query)) if q)
    return urlunsplit(parts._replace(query=joined))


def _scores_url(lineitem: str) -> str:
    parts = urlsplit(lineitem)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))
