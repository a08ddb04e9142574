"""Tornado handlers for LTI launches: cross-site POSTs that log in and land on the requested target."""

from __future__ import annotations

import html
from typing import Any

from jupyterhub.utils import url_path_join
from ltiauthenticator.lti11.handlers import LTI11AuthenticateHandler  # type: ignore[import-untyped]
from tornado.web import HTTPError

TARGET_ATTR = "_hubkit_launch_target"


def landing_url(handler: Any, user: Any) -> str:
    """Where a launch lands: its notebook / nbgitpuller target, else where JupyterHub sends a login.

    JupyterHub asks the user's default Spawner whether its server runs, creating that Spawner (its
    whole configuration) on every first launch. A user without one in memory has no running server
    (the hub creates the Spawners of running servers at start-up), so the answer is JupyterHub's own
    spawn page, without creating the Spawner before the browser asks for that page.
    """
    target: str | None = getattr(handler, TARGET_ATTR, None)
    if target:
        return target
    if handler.redirect_to_server and not handler.default_url and "" not in user.spawners:
        return str(handler.get_next_url(user, default=url_path_join(handler.hub.base_url, "spawn")))
    return str(handler.get_next_url(user))


OPEN_FROM_LMS = (
    "This address is where your course's LMS sends you when you open the hub from it; it cannot be "
    "opened directly or from a bookmark. Go to your course in the LMS and open the hub from there."
)


class LaunchOnlyMixin:
    """A GET of a launch URL (a bookmark, a reload): a plain page saying to open the hub from the LMS."""

    log: Any
    request: Any

    def get(self, *args: Any) -> None:
        self.log.info("GET of the LTI launch URL %s: answered with the open-from-LMS page", self.request.path)
        self.set_status(405)  # type: ignore[attr-defined]
        self.set_header("Allow", "POST")  # type: ignore[attr-defined]
        self.set_header("Content-Type", "text/html; charset=utf-8")  # type: ignore[attr-defined]
        self.finish(  # type: ignore[attr-defined]
            "<!doctype html><html><head><title>Open this hub from your course</title></head>"
            '<body style="font-family:sans-serif;max-width:40em;margin:3em auto">'
            f"<h1>Open this hub from your course</h1><p>{html.escape(OPEN_FROM_LMS)}</p>"
            f'<p><a href="{html.escape(url_path_join(self.hub.base_url, "login"))}">'  # type: ignore[attr-defined]
            "Other ways to sign in</a></p></body></html>"
        )


class IframeCookieMixin:
    """Give login cookies ``SameSite=None; Secure`` when the authenticator is set up for LMS iframes."""

    authenticator: Any

    def set_cookie(self, name: str, value: Any, *args: Any, **kwargs: Any) -> None:
        # Every cookie of the launch response (session, hub login, _xsrf) must work in a third-party
        # iframe, including the _xsrf cookie JupyterHub sets without going through _set_cookie.
        if getattr(self.authenticator, "iframe_cookies", False):
            kwargs = {k: v for k, v in kwargs.items() if k.lower() not in ("samesite", "secure")}
            kwargs.update(samesite="None", secure=True)
        super().set_cookie(name, value, *args, **kwargs)  # type: ignore[misc]


class HubKitLTI11LaunchHandler(LaunchOnlyMixin, IframeCookieMixin, LTI11AuthenticateHandler):  # type: ignore[misc]
    """``POST /hub/lti/launch``: validate, log in, redirect to the notebook / nbgitpuller target."""

    async def post(self) -> None:
        user = await self.login_user()
        if user is None:
            raise HTTPError(403, "This launch is valid, but the hub does not allow this user to log in.")
        self.redirect(landing_url(self, user))
