"""``HubKitLTI11Authenticator``: ltiauthenticator's LTI 1.1 with DB-kept nonces and the identity contract."""

from __future__ import annotations

import time
from typing import Any

from ltiauthenticator.lti11.auth import LTI11Authenticator  # type: ignore[import-untyped]
from ltiauthenticator.lti11.handlers import LTI11ConfigHandler  # type: ignore[import-untyped]
from tornado.web import HTTPError
from traitlets import Bool, Dict, Int, List, Unicode, default

from . import framing
from .accounts import PENDING_KEY, IdentityAuthenticatorMixin
from .course_membership import COURSE_KEY
from .exceptions import HubKitAuthError, LaunchRejected, NonceReused
from .lti11_signature import SignedLaunch, check_launch
from .lti_handlers import TARGET_ATTR, HubKitLTI11LaunchHandler
from .lti_launch import (
    LaunchLimits,
    check_sizes,
    check_user_id,
    check_username,
    course_groups,
    launch_course,
    launch_target,
    target_request,
)


class LTIOptionsMixin(IdentityAuthenticatorMixin):
    """Traits shared by HubKit's LTI 1.1 and 1.3 authenticators."""

    allowed_git_hosts = List(
        Unicode(),
        default_value=["github.com", "gitlab.com"],
        config=True,
        help="""Hosts an nbgitpuller link in a launch may pull from (https only). A launch naming any
        other host is refused with 400 before a user is created.""",
    )
    iframe_cookies = Bool(
        False,
        config=True,
        help="""Set the hub's login cookies with ``SameSite=None; Secure`` on launches, so a hub shown
        inside an LMS iframe stays logged in. Needs https. Also set
        ``c.JupyterHub.tornado_settings = {"cookie_options": {"samesite": "None", "secure": True}}``
        so the cookies set after the launch behave the same.""",
    )
    new_window_seconds = Int(
        120,
        config=True,
        help="""How long the "Open in a new window" link of a launch stays valid (seconds). It is shown
        when the browser refuses the hub's cookies inside the LMS iframe and works once.""",
    )
    max_parameters = Int(200, config=True, help="Most parameters a launch may carry (413 above).")
    max_parameter_length = Int(4096, config=True, help="Longest value of one launch parameter (413 above).")
    max_username_length = Int(
        128, config=True, help="Longest user name an LMS may give; longer names are refused with 400."
    )

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        # A launch signed by a registered LMS is the authorization: the registry is the allow list.
        return True

    @default("id_range")
    def _default_id_range(self) -> tuple[int, int]:
        return (3_000_000, 3_999_999)

    def hubkit_frame_origins(self) -> list[str]:
        """The LMS origins allowed to show this hub in an iframe (every registered LMS's)."""
        return []

    def hubkit_singleuser_args(self) -> list[str]:
        """Arguments giving single-user servers the hub's ``frame-ancestors`` (HubKitSpawner adds them)."""
        return framing.singleuser_args(self.hubkit_frame_origins())

    def hubkit_install_frame_policy(self, app: Any) -> None:
        framing.install_hub_policy(app, self.hubkit_frame_origins(), self.log)

    def launch_limits(self) -> LaunchLimits:
        return LaunchLimits(
            int(self.max_parameters), int(self.max_parameter_length), int(self.max_username_length)
        )

    login_service: str

    def hubkit_refusal(self, handler: Any, error: HubKitAuthError, auth_model: dict[str, Any]) -> HTTPError:
        """A replayed nonce (401) or a taken name (403), found when the admitted launch is written."""
        state = auth_model.get("auth_state") or {}
        where = state.get("lti_consumer") or state.get("lti_issuer") or "?"
        return self.reject(handler, error, f"from={str(where)[:100]!r}, user={auth_model.get('name')!r}")

    def reject(self, handler: Any, error: HubKitAuthError, context: str) -> HTTPError:
        """Log the rejection with its context; the HTTPError carries only the plain sentence.

        A replayed nonce answers 401, a failed validation its own status, any other refusal (say a
        name bound to someone else) 403.
        """
        if isinstance(error, NonceReused):
            error = LaunchRejected("This launch was already used; launch again from the LMS.", 401)
        elif not isinstance(error, LaunchRejected):
            error = LaunchRejected(str(error), 403)
        remote = getattr(getattr(handler, "request", None), "remote_ip", "?")
        self.log.warning(
            "%s launch rejected (%d): %s [%s, remote=%s]",
            self.login_service,
            error.status,
            error,
            context,
            remote,
        )
        return HTTPError(error.status, str(error))


class HubKitLTI11Authenticator(LTIOptionsMixin, LTI11Authenticator):  # type: ignore[misc]
    """LTI 1.1 for several LMSs at once: consumer registry, replay-safe nonces, course groups, identity."""

    hubkit_provider = "lti"
    login_service = "LTI 1.1"

    frame_origins = Dict(
        key_trait=Unicode(),
        value_trait=List(Unicode()),
        config=True,
        help="""LMS origins allowed to show the hub in an iframe, per consumer key:
        ``{"canvas-key": ["https://canvas.example.edu"]}``. The hub and single-user servers (through
        HubKitSpawner) then send ``Content-Security-Policy: frame-ancestors 'self' <origins>``; with
        none registered they keep JupyterHub's ``frame-ancestors 'none'``.""",
    )
    timestamp_window = Int(
        300,
        config=True,
        help="""Seconds a launch's ``oauth_timestamp`` may differ from the hub's clock (both ways).
        Nonces are kept in the hub database for twice as long, so a replay is refused even after a hub
        restart or on another replica.""",
    )

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        self.hubkit_install_frame_policy(app)
        return [("/lti/launch", HubKitLTI11LaunchHandler), ("/lti11/config", LTI11ConfigHandler)]

    def hubkit_frame_origins(self) -> list[str]:
        unknown = set(self.frame_origins) - set(self.consumers)
        if unknown:
            raise ValueError(
                f"frame_origins names consumer keys that are not in consumers: {sorted(unknown)}"
            )
        return sorted({framing.check_origin(o) for origins in self.frame_origins.values() for o in origins})

    def _collect(self, handler: Any) -> tuple[dict[str, str], dict[str, str]]:
        request = handler.request
        body: dict[str, str] = {}
        query: dict[str, str] = {}
        for target, source in ((body, request.body_arguments), (query, request.query_arguments)):
            for name, values in source.items():
                if len(values) != 1 or name in body or name in query:
                    raise LaunchRejected(f"The launch parameter {name[:40]!r} appears more than once.")
                try:
                    target[name] = values[0].decode("utf-8")
                except UnicodeDecodeError as e:
                    raise LaunchRejected("The launch parameters are not valid UTF-8.") from e
        return body, query

    async def authenticate(self, handler: Any, data: Any = None) -> dict[str, Any]:
        context = "consumer=?"
        try:
            body, query = self._collect(handler)
            params = {**query, **body}
            check_sizes(params, self.launch_limits())
            consumer_key, user_id = params.get("oauth_consumer_key", "?"), params.get("user_id", "?")
            context = f"consumer={consumer_key[:64]!r}, user_id={user_id[:64]!r}"
            url = f"{self.get_uri_scheme(handler.request)}://{handler.request.host}{handler.request.path}"
            launch = SignedLaunch(url=url, body=body, query=query, now=time.time())
            consumer = check_launch(launch, self.consumers, float(self.timestamp_window))
            return await self._auth_model(handler, consumer, params)
        except HubKitAuthError as e:
            raise self.reject(handler, e, context) from e

    async def _auth_model(self, handler: Any, consumer: str, params: dict[str, str]) -> dict[str, Any]:
        limits = self.launch_limits()
        user_id = check_user_id(params["user_id"])
        # Upstream's rule: username_key (default custom_canvas_user_id), else user_id.
        raw_name = params.get(self.username_key or "user_id") or user_id
        username = self.normalize_username(check_username(raw_name, limits))
        custom = {k.removeprefix("custom_"): v for k, v in params.items() if k.startswith("custom_")}
        target = launch_target(target_request(custom), handler.base_url, self.allowed_git_hosts)
        roles = params.get("roles", "").split(",")
        groups = course_groups(params.get("context_id"), roles)
        nonce = (f"lti11:{consumer}", params["oauth_nonce"][:255], 2.0 * float(self.timestamp_window) + 60)
        pending = self.hubkit_pending(
            f"lti:{consumer}:{user_id}", username, nonce=nonce, allocated_groups=groups
        )
        setattr(handler, TARGET_ATTR, target)
        lti = {k: v for k, v in params.items() if not k.startswith("oauth_")}
        return {
            "name": username,
            "groups": groups,
            # Upstream's auth_state (the launch parameters but oauth_*), HubKit's keys beside them.
            "auth_state": {**lti, "lti11": lti, "lti_consumer": consumer},
            COURSE_KEY: launch_course(params.get("context_id")),  # only this course's groups change
            PENDING_KEY: pending,  # written (nonce, binding, ids) once check_allowed admits the launch
        }
