"""Which LMS pages may show the hub in an iframe, and the "open in a new window" launch token.

JupyterHub (since 4.1) and jupyter_server's JupyterHub extension send ``frame-ancestors 'none'``. A hub
whose LTI authenticators register the LMS origins that frame it (per LTI 1.1 consumer or LTI 1.3
issuer) sends ``frame-ancestors 'self' <those origins>`` instead, from the hub and, through the
spawner's arguments, from single-user servers; without registered origins nothing changes ('none').

When a browser refuses the hub's cookies inside the frame (third-party cookies blocked), an LTI 1.3
launch cannot complete there. The launch page then offers "Open in a new window": a form posting a
signed token that carries that launch (its id_token and state), valid for a short time; the launch's
nonce is recorded when the new window logs in, so the token works once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from tornado.web import decode_signed_value

from .exceptions import LaunchRejected

CSP = "Content-Security-Policy"
ORIGINS_SETTING = "hubkit_frame_origins"  # tornado setting: the origins HubKit put into the hub's CSP
NEW_WINDOW_NAME = "hubkit-lti13-new-window"  # the signed value's name (binds it to this purpose)


def check_origin(origin: str) -> str:
    """An origin as CSP wants it, ``https://host[:port]`` (``http`` for loopback tests); else ValueError."""
    parts = urlsplit(origin)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"{origin!r} is not an origin like https://lms.example.edu (no path).")
    if parts.query or parts.fragment or parts.username or parts.password or " " in origin or ";" in origin:
        raise ValueError(f"{origin!r} is not an origin like https://lms.example.edu (no path).")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def frame_ancestors(origins: Iterable[str]) -> str:
    """The CSP directive: the hub itself and ``origins``, or ``'none'`` when no origin is registered."""
    found = sorted({check_origin(o) for o in origins})
    return "frame-ancestors " + (" ".join(["'self'", *found]) if found else "'none'")


def install_hub_policy(app: Any, origins: Iterable[str], log: Any) -> None:
    """Add ``origins`` to the hub's ``frame-ancestors`` (called while the hub builds its handlers).

    A ``Content-Security-Policy`` the admin set in ``tornado_settings["headers"]`` is left alone.
    """
    new = {check_origin(o) for o in origins}
    settings = getattr(app, "tornado_settings", None)
    if not new or settings is None:  # nothing to add (or not called by a hub)
        return
    headers = settings.setdefault("headers", {})
    mine: set[str] = settings.setdefault(ORIGINS_SETTING, set())
    if CSP in headers and not mine:
        log.warning("tornado_settings sets %s; the LMS frame origins %s are not added", CSP, sorted(new))
        return
    mine |= new
    report = settings.get("csp_report_uri") or app.hub.base_url.rstrip("/") + "/security/csp-report"
    headers[CSP] = f"{frame_ancestors(mine)}; report-uri {report}"
    log.info("The hub may be framed by %s", sorted(mine))


def singleuser_args(origins: Iterable[str]) -> list[str]:
    """jupyter_server arguments giving a single-user server the hub's ``frame-ancestors``."""
    found = {check_origin(o) for o in origins}
    if not found:
        return []
    settings = {"headers": {CSP: frame_ancestors(found)}}
    return [f"--ServerApp.tornado_settings={json.dumps(settings)}"]


def new_window_token(handler: Any, id_token: str, state: str) -> str:
    """A signed, timestamped token carrying one launch, for the "open in a new window" form."""
    value = json.dumps({"id_token": id_token, "state": state})
    return str(handler.create_signed_value(NEW_WINDOW_NAME, value).decode())


def read_new_window_token(handler: Any, token: str, max_age_seconds: float) -> tuple[str, str]:
    """The launch (id_token, state) in a new-window token; LaunchRejected when altered or expired."""
    secret = handler.application.settings["cookie_secret"]
    raw = decode_signed_value(secret, NEW_WINDOW_NAME, token, max_age_days=max_age_seconds / 86400)
    if raw is None:
        raise LaunchRejected("This new-window link expired or was altered; launch again from the LMS.", 401)
    launch = json.loads(raw)
    return str(launch["id_token"]), str(launch["state"])
