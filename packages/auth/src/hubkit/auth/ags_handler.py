"""``POST /hub/lti13/ags/scores``: a course's instructors and TAs (or a grading service) post a score.

Who may post: a user in ``course:<ctx>:instructor`` or ``course:<ctx>:ta`` of that very course, or a
token holding the ``custom:hubkit-grades:post`` scope (a grading service). Never the student whose
score it is. The student must be on the course (in one of its groups). Refusals are 4xx with one
sentence; the log line says who asked for what.
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from tornado.web import HTTPError

from .ags import GRADE_SCOPE, CourseGrades, ScoreRequest, post_score
from .exceptions import HubKitAuthError, LaunchRejected
from .lti_launch import course_group_id
from .nrps import PlatformServiceError, ServiceAccess


class HubKitAGSScoresHandler(APIHandler):  # type: ignore[misc]
    async def post(self) -> None:
        who = self.current_user
        if who is None:
            raise HTTPError(
                403, "Posting a grade needs a token of a course instructor, TA or grading service."
            )
        try:
            score = ScoreRequest.from_json(self.get_json_body())
            lineitem = await self.authenticator.hubkit_post_grade(self, who, score)
        except LaunchRejected as e:
            self.log.warning("Grade refused (%d): %s [by=%s]", e.status, e, getattr(who, "name", "?"))
            raise HTTPError(e.status, str(e)) from e
        self.set_status(201)
        self.finish(json.dumps({"lineitem": lineitem, "user": score.user, "score_given": score.score_given}))


async def post_grade(auth: Any, handler: Any, who: Any, score: ScoreRequest) -> str:
    """Check who posts what for whom, then post it to the LMS; LaunchRejected carries the 4xx."""
    course = course_group_id(score.context_id)
    prefix = f"course:{course}:"
    target = orm.User.find(handler.db, score.user)
    if target is None or not any(g.name.startswith(prefix) for g in target.groups):
        raise LaunchRejected(f"{score.user} is not on the course {score.context_id}.", 404)
    if getattr(who, "name", None) == target.name and GRADE_SCOPE not in handler.expanded_scopes:
        raise LaunchRejected("Nobody can post a grade for themselves.", 403)
    staff = {f"{prefix}instructor", f"{prefix}ta"}
    is_staff = bool(staff & {g.name for g in getattr(who, "groups", [])})
    if not is_staff and GRADE_SCOPE not in handler.expanded_scopes:
        raise LaunchRejected(
            f"Only instructors and TAs of {score.context_id} (or a service with the {GRADE_SCOPE} "
            "scope) can post grades.",
            403,
        )
    grades: CourseGrades | None = auth.hubkit_course_grades(course)
    key = auth.tool_key()
    platform = auth.registry().get(grades.issuer) if grades else None
    if grades is None or key is None or platform is None or not platform.token_url:
        raise LaunchRejected(
            f"Grade passback is not available for {score.context_id}: the hub needs a tool key, the "
            "platform's token_url and a launch of the course carrying its grade service.",
            409,
        )
    lms_user_id = await _lms_user_id(auth, handler, target, grades.issuer)
    access = ServiceAccess(grades.client_id, platform.token_url, key)
    try:
        lineitem = await post_score(access, grades, lms_user_id, score)
    except (PlatformServiceError, KeyError, ValueError) as e:
        auth.log.warning("Grade for %s in %s not posted: %s", score.user, score.context_id, e)
        raise LaunchRejected("The LMS did not accept the grade; try again later.", 502) from e
    auth.log.info(
        "Grade posted: %s %g/%g in %s (%s) by %s",
        score.user,
        score.score_given,
        score.score_maximum,
        score.context_id,
        score.resource_link_id,
        getattr(who, "name", "?"),
    )
    return lineitem


async def _lms_user_id(auth: Any, handler: Any, target: Any, issuer: str) -> str:
    """The student's user id at the LMS: from their last launch, else their name when names are ``sub``."""
    try:
        state = await handler.users[target].get_auth_state() or {}
    except HubKitAuthError:
        state = {}
    launch = state.get("lti13") or {}
    if launch.get("iss") == issuer and launch.get("sub"):
        return str(launch["sub"])
    if (auth.username_key or "sub") == "sub":
        return str(target.name).removeprefix(str(auth.hubkit_username_prefix))
    raise LaunchRejected(f"The hub does not know {target.name}'s LMS user id yet (no launch seen).", 409)
