"""LTI Deep Linking 2.0: an instructor chooses what a new LMS link opens; the hub answers signed.

An ``LtiDeepLinkingRequest`` launch (instructors only) logs the instructor in and shows a chooser: a
notebook path or an nbgitpuller repository (+ path) from ``allowed_git_hosts``. The choice goes back to
the LMS as an ``LtiDeepLinkingResponse`` JWT signed with the tool key, auto-posted to the request's
``deep_link_return_url``; the new link carries the choice as custom parameters, so later resource-link
launches land there (``launch_target``).
"""

from __future__ import annotations

import html
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import jwt
from tornado.web import decode_signed_value

from .exceptions import LaunchRejected
from .lti_launch import TargetRequest, launch_target, role_kind

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
SETTINGS = DL + "deep_linking_settings"
REQUEST = "LtiDeepLinkingRequest"
CHOICE_NAME = "hubkit-lti13-deep-link"  # the signed chooser token's name
CHOICE_SECONDS = 600


def check_request(claims: dict[str, Any]) -> None:
    """A deep linking request must come from an instructor and say where the answer goes."""
    if "instructor" not in {role_kind(str(r)) for r in claims.get(LTI + "roles") or []}:
        raise LaunchRejected("Only instructors can add hub links to a course.", 403)
    settings = claims.get(SETTINGS) or {}
    url = settings.get("deep_link_return_url") if isinstance(settings, dict) else None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
        raise LaunchRejected("The deep linking request names no deep_link_return_url.")


def choice_token(handler: Any, claims: dict[str, Any]) -> str:
    settings = claims[SETTINGS]
    value = {
        "return_url": settings["deep_link_return_url"],
        "data": settings.get("data"),
        "iss": claims["iss"],
        "client_id": claims.get("azp") or claims["aud"],
        "deployment_id": claims.get(LTI + "deployment_id"),
    }
    return str(handler.create_signed_value(CHOICE_NAME, json.dumps(value)).decode())


def read_choice_token(handler: Any, token: str) -> dict[str, Any]:
    secret = handler.application.settings["cookie_secret"]
    raw = decode_signed_value(secret, CHOICE_NAME, token, max_age_days=CHOICE_SECONDS / 86400)
    if raw is None:
        raise LaunchRejected("This link chooser expired or was altered; start again from the LMS.", 401)
    value: dict[str, Any] = json.loads(raw)
    return value


def chooser_page(action: str, token: str) -> str:
    field = '<p><label>{label}<br><input name="{name}" size="60" placeholder="{hint}"></label></p>'
    fields = "".join(
        field.format(label=label, name=name, hint=html.escape(hint))
        for label, name, hint in (
            ("Link title", "title", "Week 1: introduction"),
            ("Notebook path", "notebook", "week1/intro.ipynb"),
            ("or nbgitpuller repository", "repo", "https://github.com/org/course"),
            ("and path in it", "urlpath", "lab/tree/course/week1.ipynb"),
        )
    )
    return (
        "<!doctype html><html><head><title>Add a Jupyter link</title></head>"
        '<body style="font-family:sans-serif;max-width:40em;margin:3em auto">'
        "<h1>Add a Jupyter link</h1><p>Choose what the new link in your course opens.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">{fields}'
        '<button type="submit">Add the link</button></form></body></html>'
    )


def chosen_custom(form: dict[str, str], base_url: str, allowed_git_hosts: list[str]) -> dict[str, str]:
    """The custom parameters of the chosen link, checked as a launch will check them."""
    if form.get("repo"):
        custom = {"nbgitpuller_repo": form["repo"]}
        if form.get("urlpath"):
            custom["nbgitpuller_urlpath"] = form["urlpath"]
        request = TargetRequest(
            repo=custom["nbgitpuller_repo"], urlpath=custom.get("nbgitpuller_urlpath", "")
        )
    elif form.get("notebook"):
        custom = {"notebook": form["notebook"]}
        request = TargetRequest(notebook=form["notebook"])
    else:
        raise LaunchRejected("Choose a notebook path or an nbgitpuller repository for the link.")
    launch_target(request, base_url, allowed_git_hosts)  # the same checks as the later launches
    return custom


def response_jwt(tool_key: Any, choice: dict[str, Any], title: str, custom: dict[str, str]) -> str:
    """The signed LtiDeepLinkingResponse with one ltiResourceLink content item."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": choice["client_id"],
        "aud": choice["iss"],
        "iat": now,
        "exp": now + 300,
        "nonce": secrets.token_urlsafe(16),
        LTI + "message_type": "LtiDeepLinkingResponse",
        LTI + "version": "1.3.0",
        LTI + "deployment_id": choice["deployment_id"],
        DL + "content_items": [{"type": "ltiResourceLink", "title": title or "Jupyter", "custom": custom}],
    }
    if choice.get("data") is not None:
        claims[DL + "data"] = choice["data"]
    return jwt.encode(claims, tool_key.key, algorithm="RS256", headers={"kid": tool_key.kid})


def return_page(url: str, token: str) -> str:
    return (
        '<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(url)}">'
        f'<input type="hidden" name="JWT" value="{html.escape(token)}">'
        '<noscript><button type="submit">Continue</button></noscript></form></body></html>'
    )
