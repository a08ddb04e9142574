"""``HubKitLTI13Authenticator``: LTI 1.3 for several platforms, cached JWKS, deployment allow-list."""

from __future__ import annotations

import html
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jupyterhub.handlers import BaseHandler
from ltiauthenticator.lti13.auth import LTI13Authenticator  # type: ignore[import-untyped]
from ltiauthenticator.lti13.handlers import LTI13ConfigHandler  # type: ignore[import-untyped]
from tornado.web import HTTPError, decode_signed_value
from traitlets import Bool as TBool
from traitlets import Dict, Int, List, Unicode

from . import deep_linking, framing
from .accounts import PENDING_KEY
from .ags import AGS_CLAIM, CourseGrades, ScoreRequest
from .ags_handler import HubKitAGSScoresHandler, post_grade
from .course_membership import COURSE_KEY
from .exceptions import HubKitAuthError, LaunchRejected
from .jwks import JWKSCache
from .lti11 import LTIOptionsMixin
from .lti13_token import (
    CONTEXT,
    CUSTOM,
    MESSAGE_TYPE,
    ROLES,
    TARGET_LINK,
    Platform,
    unverified_header,
    verify_id_token,
)
from .lti_handlers import TARGET_ATTR, IframeCookieMixin, LaunchOnlyMixin, landing_url
from .lti_launch import (
    TargetRequest,
    check_user_id,
    check_username,
    course_group_id,
    course_groups,
    launch_course,
    launch_target,
    target_request,
)
from .roster_service import RosterService
from .tool_key import ToolKey

STATE_NAME = "hubkit-lti13-state"
VERIFIED_ATTR = "_hubkit_lti13_verified"  # the claims the callback handler verified on this request


def target_link_path(target_link_uri: str, host: str, base_url: str) -> str:
    """Where upstream lands a launch: a ``next=`` in the target link, else the link's path and query,
    unless the link is the hub's root or another site's (then "": JupyterHub's usual landing)."""
    parts = urlsplit(target_link_uri)
    if parts.netloc not in ("", host):
        return ""
    if "next=" in parts.query:
        return dict(parse_qsl(parts.query)).get("next", "")
    if parts.path.rstrip("/") in ("", base_url.rstrip("/"), base_url.rstrip("/") + "/hub"):
        return ""
    return parts.path + (f"?{parts.query}" if parts.query else "")


class HubKitLTI13LoginHandler(IframeCookieMixin, BaseHandler):  # type: ignore[misc]
    """Third-party login initiation (GET or POST from the LMS) → redirect to the platform's authorize URL."""

    def check_xsrf_cookie(self) -> None:
        # LMSs (Moodle in particular, ltiauthenticator#118) POST this cross-site without an _xsrf field;
        # the signed state, the state cookie and the one-time nonce protect the flow instead.
        return None

    async def get(self) -> None:
        await self._initiate()

    async def post(self) -> None:
        await self._initiate()

    async def _initiate(self) -> None:
        names = ("iss", "login_hint", "target_link_uri", "lti_message_hint", "client_id", "lti_deployment_id")
        args = {name: self.get_argument(name, "") for name in names}
        self.redirect(self.authenticator.login_redirect(self, args))


class HubKitLTI13CallbackHandler(LaunchOnlyMixin, IframeCookieMixin, BaseHandler):  # type: ignore[misc]
    """The platform's form POST with ``id_token`` and ``state``: verify, log in, land on the target."""

    def check_xsrf_cookie(self) -> None:
        return None  # a cross-site form POST by design; verified through state and nonce

    async def post(self) -> None:
        id_token, state = self.get_body_argument("id_token", ""), self.get_body_argument("state", "")
        if self.authenticator.cookies_refused_in_frame(self):
            # Third-party cookies blocked: offer this (verified) launch in a new, first-party window.
            token = await self.authenticator.new_window_token(self, id_token, state)
            self.finish(new_window_page(self.authenticator.new_window_url(self), token))
            return
        # As upstream: the handler verifies the launch, then logs in with the decoded claims.
        claims = await self.authenticator.verify_launch(self, id_token, state)
        await self._log_in(claims)

    async def _log_in(self, claims: dict[str, Any]) -> None:
        user = await self.login_user(claims)
        if user is None:
            raise HTTPError(403, "This launch is valid, but the hub does not allow this user to log in.")
        self.clear_cookie(STATE_NAME, path=self.hub.base_url)
        await self.authenticator.after_launch(self, claims)
        if claims.get(MESSAGE_TYPE) == deep_linking.REQUEST:  # an instructor adds a link: the chooser
            token = deep_linking.choice_token(self, claims)
            self.finish(deep_linking.chooser_page(self.authenticator.sibling_url(self, "deep_link"), token))
            return
        self.redirect(landing_url(self, user))


class HubKitLTI13DeepLinkHandler(IframeCookieMixin, BaseHandler):  # type: ignore[misc]
    """``POST /hub/lti13/deep_link``: the instructor's choice → a signed LtiDeepLinkingResponse."""

    def check_xsrf_cookie(self) -> None:
        return None  # the signed chooser token (bound to that launch, short-lived) authorizes the post

    async def post(self) -> None:
        auth = self.authenticator
        form = {k: self.get_body_argument(k, "") for k in ("token", "title", "notebook", "repo", "urlpath")}
        try:
            choice = deep_linking.read_choice_token(self, form["token"])
            custom = deep_linking.chosen_custom(form, self.base_url, list(auth.allowed_git_hosts))
            key = auth.tool_key()
            if key is None:
                raise LaunchRejected("This hub has no LTI tool key to sign the new link with.", 409)
        except LaunchRejected as e:
            raise auth.reject(self, e, "deep link") from e
        signed = deep_linking.response_jwt(key, choice, form["title"], custom)
        auth.log.info("Deep link for %s: %s", choice["iss"], custom)
        self.finish(deep_linking.return_page(choice["return_url"], signed))


class HubKitLTI13JWKSHandler(BaseHandler):  # type: ignore[misc]
    """``GET /hub/lti13/jwks``: the tool's public key, for the LMS to verify its client assertions."""

    def get(self) -> None:
        key = self.authenticator.tool_key()
        if key is None:
            raise HTTPError(404, "This hub has no LTI tool key (set HubKitLTI13Authenticator.tool_key_file).")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(key.jwks()))


class HubKitLTI13NewWindowHandler(HubKitLTI13CallbackHandler):
    """``POST /hub/lti13/new_window``: the launch of a new-window token, logged in first-party."""

    async def post(self) -> None:
        claims = await self.authenticator.verify_new_window(self, self.get_body_argument("token", ""))
        await self._log_in(claims)


def new_window_page(action: str, token: str) -> str:
    """The page shown in the LMS iframe when the browser refuses the hub's cookies there."""
    return (
        "<!doctype html><html><head><title>Open the hub in a new window</title></head>"
        '<body style="font-family:sans-serif;max-width:40em;margin:3em auto">'
        f"<p>{html.escape(COOKIES_REFUSED)}</p>"
        f'<form method="post" action="{html.escape(action)}" target="_blank">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        '<button type="submit">Open in a new window</button></form></body></html>'
    )


COOKIES_REFUSED = (
    "Your browser does not let the hub keep you signed in inside this LMS page; "
    "open the hub in a new window to continue."
)


class HubKitLTI13Authenticator(LTIOptionsMixin, LTI13Authenticator):  # type: ignore[misc]
    """LTI 1.3 with a platform registry, cached JWKS, allowed deployments, DB nonces, course groups."""

    hubkit_provider = "lti"
    login_service = "LTI 1.3"
    hubkit_refused = {
        "jwks_algorithms": (
            ["RS256"],
            "id_tokens are verified with RS256 only, the algorithm the LTI 1.3 security framework "
            "requires; remove the setting and register the tool with RS256 at the LMS.",
        )
    }

    platforms = Dict(
        config=True,
        help="""Registered LMS platforms: ``{issuer: {"client_ids": [...], "authorize_url": ...,
        "jwks_url": ..., "deployment_ids": [...], "frame_origins": [...]}}``. A launch must come from a
        listed issuer, be meant for one of its client ids and name one of its deployment ids (``"*"``
        allows any deployment). ``frame_origins`` (optional) are the LMS origins allowed to show the hub
        in an iframe (``https://canvas.example.edu``): the hub and single-user servers then send
        ``frame-ancestors 'self' <origins>`` instead of ``'none'``.
        The upstream single-platform settings (``issuer``, ``client_id``, ``authorize_url``,
        ``jwks_endpoint``) still work and add one more platform, which then needs ``deployment_ids``.""",
    )
    deployment_ids = List(
        Unicode(),
        config=True,
        help="Allowed deployment ids of the platform configured with the upstream ``issuer`` setting.",
    )
    jwks_cache_seconds = Int(
        300, config=True, help="How long a platform's JWKS is reused before it is fetched again."
    )
    id_token_max_age = Int(
        600, config=True, help="Oldest ``iat`` (seconds) an id_token may have; older launches are refused."
    )
    state_max_age = Int(
        600, config=True, help="Seconds between login initiation and launch before it expires."
    )
    state_cookie_required = TBool(
        True,
        config=True,
        help="""Require the state cookie set at login initiation to come back with the launch, which
        ties a launch to the browser that started it (login CSRF protection). Browsers that block
        third-party cookies drop it when the hub runs inside an LMS iframe; the launch page there then
        offers "Open in a new window", which completes that launch once (see ``new_window_seconds``).
        Turning this off instead accepts launches without the cookie (the signed state and the one-time
        nonce still apply).""",
    )

    tool_key_file = Unicode(
        "",
        config=True,
        help="""PEM file of the tool's RSA private key (2048 bits or more), shared by every hub replica.
        Its public half is served at ``/hub/lti13/jwks`` (the tool's "Public JWK URL" / "Keyset URL" at
        the LMS); the hub signs its OAuth2 client assertions for LTI Advantage services with it. Empty:
        no services (roster sync, grade passback) are used.""",
    )
    roster_sync_interval = Int(
        3600,
        config=True,
        help="""Seconds between roster (NRPS) syncs of each course an instructor launched from since the
        hub started (every instructor launch syncs at once too). A failed sync is retried after
        ``roster_retry_seconds``, doubling after each failure up to this interval. 0 turns scheduled
        syncs off.""",
    )
    roster_retry_seconds = Int(
        30, config=True, help="First wait (seconds) before retrying a roster sync that failed."
    )

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        self.hubkit_install_frame_policy(app)
        self.roster.start(app)
        return [
            ("/lti13/oauth_login", HubKitLTI13LoginHandler),
            ("/lti13/oauth_callback", HubKitLTI13CallbackHandler),
            ("/lti13/new_window", HubKitLTI13NewWindowHandler),
            ("/lti13/jwks", HubKitLTI13JWKSHandler),
            ("/lti13/deep_link", HubKitLTI13DeepLinkHandler),
            ("/lti13/ags/scores", HubKitAGSScoresHandler),
            ("/lti13/config", LTI13ConfigHandler),
        ]

    # --- registry -------------------------------------------------------------------------------

    def registry(self) -> dict[str, Platform]:
        found = {iss: Platform.from_config(iss, entry) for iss, entry in self.platforms.items()}
        if self.issuer and self.issuer not in found:
            found[self.issuer] = Platform(
                self.issuer,
                tuple(self.client_id),
                self.authorize_url,
                self.jwks_endpoint,
                tuple(self.deployment_ids),
            )
        return found

    def hubkit_frame_origins(self) -> list[str]:
        return sorted({o for platform in self.registry().values() for o in platform.frame_origins})

    # --- LTI Advantage services -----------------------------------------------------------------

    def tool_key(self) -> ToolKey | None:
        if not self.tool_key_file:
            return None
        cached: ToolKey | None = getattr(self, "_tool_key", None)
        if cached is None:
            cached = self._tool_key = ToolKey.from_pem_file(self.tool_key_file)
        return cached

    @property
    def roster(self) -> RosterService:
        service: RosterService | None = getattr(self, "_roster", None)
        if service is None:
            service = self._roster = RosterService(self)
        return service

    async def after_launch(self, handler: Any, claims: dict[str, Any]) -> None:
        """Remember the course's grade service; an instructor's launch with NRPS syncs the roster."""
        service = claims.get(AGS_CLAIM) or {}
        context = (claims.get(CONTEXT) or {}).get("id")
        if isinstance(service, dict) and isinstance(service.get("lineitems"), str) and context:
            grades = CourseGrades(str(claims["iss"]), str(claims["aud"]), service["lineitems"])
            self._grades()[course_group_id(str(context))] = grades
        await self.roster.after_launch(handler.db, claims)

    def _grades(self) -> dict[str, CourseGrades]:
        found: dict[str, CourseGrades] | None = getattr(self, "_course_grades", None)
        if found is None:
            found = {}
            self._course_grades = found
        return found

    def hubkit_course_grades(self, course: str) -> CourseGrades | None:
        return self._grades().get(course)

    async def hubkit_post_grade(self, handler: Any, who: Any, score: ScoreRequest) -> str:
        return await post_grade(self, handler, who, score)

    @property
    def jwks(self) -> JWKSCache:
        cache = getattr(self, "_jwks_cache", None)
        if cache is None:
            cache = self._jwks_cache = JWKSCache(max_age=float(self.jwks_cache_seconds))
        return cache

    # --- login initiation -----------------------------------------------------------------------

    def login_redirect(self, handler: Any, args: dict[str, str]) -> str:
        context = f"iss={args['iss'][:100]!r}, client_id={args['client_id'][:64]!r}"
        try:
            return self._login_redirect(handler, args)
        except LaunchRejected as e:
            raise self.reject(handler, e, context) from e

    def _login_redirect(self, handler: Any, args: dict[str, str]) -> str:
        if not args["iss"] or not args["login_hint"] or not args["target_link_uri"]:
            raise LaunchRejected("The login initiation lacks iss, login_hint or target_link_uri.")
        platform = self.registry().get(args["iss"])
        if platform is None:
            raise LaunchRejected("The launch comes from an LMS (issuer) this hub does not know.", 401)
        client_id = args["client_id"] or (platform.client_ids[0] if len(platform.client_ids) == 1 else "")
        if client_id not in platform.client_ids:
            raise LaunchRejected("The launch names a client id this hub is not registered under.", 401)
        if args["lti_deployment_id"]:
            platform.check_deployment(args["lti_deployment_id"])
        if urlsplit(args["target_link_uri"]).netloc not in ("", handler.request.host):
            raise LaunchRejected("The launch's target link points to another site, not this hub.")
        nonce, bind = secrets.token_urlsafe(24), secrets.token_urlsafe(16)
        payload = {"iss": platform.issuer, "client_id": client_id, "nonce": nonce, "bind": bind}
        state = handler.create_signed_value(STATE_NAME, json.dumps(payload)).decode()
        handler._set_cookie(STATE_NAME, bind, encrypted=True, path=handler.hub.base_url)
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": client_id,
            "redirect_uri": self._callback(handler),
            "login_hint": args["login_hint"],
            "state": state,
            "nonce": nonce,
        }
        if args["lti_message_hint"]:
            query["lti_message_hint"] = args["lti_message_hint"]
        separator = "&" if "?" in platform.authorize_url else "?"
        return f"{platform.authorize_url}{separator}{urlencode(query)}"

    def _callback(self, handler: Any) -> str:
        scheme = self.get_uri_scheme(handler.request)
        # Derived from login_url so a composed (URL-prefixed) authenticator gets its own callback.
        callback = self.login_url(handler.hub.base_url).rsplit("/", 1)[0] + "/oauth_callback"
        return f"{scheme}://{handler.request.host}{callback}"

    def new_window_url(self, handler: Any) -> str:
        return self.sibling_url(handler, "new_window")

    def sibling_url(self, handler: Any, name: str) -> str:
        """The path of another of this authenticator's handlers (URL-prefixed when composed)."""
        return str(self.login_url(handler.hub.base_url).rsplit("/", 1)[0] + "/" + name)

    # --- inside an LMS iframe -------------------------------------------------------------------

    def cookies_refused_in_frame(self, handler: Any) -> bool:
        """A launch posted into an iframe (``Sec-Fetch-Dest``) whose state cookie did not come back.

        Only offered inside frames: a CSP ``frame-ancestors`` naming the LMS keeps other sites from
        framing the hub, and a top-level launch without its cookie stays refused (login CSRF).
        """
        if not self.state_cookie_required or handler.request.headers.get("Sec-Fetch-Dest") != "iframe":
            return False
        return handler.get_cookie(STATE_NAME) is None

    async def new_window_token(self, handler: Any, id_token: str, state: str) -> str:
        """Verify the launch (all but the state cookie the browser refused), then sign it for a new window."""
        await self.verify_launch(handler, id_token, state, require_cookie=False)
        self.log.info(
            "LTI 1.3 launch in an iframe without its state cookie: offered in a new window [remote=%s]",
            handler.request.remote_ip,
        )
        return framing.new_window_token(handler, id_token, state)

    async def verify_new_window(self, handler: Any, token: str) -> dict[str, Any]:
        """The verified claims of a new-window token's launch; its nonce makes the token single-use."""
        try:
            id_token, state = framing.read_new_window_token(handler, token, float(self.new_window_seconds))
        except LaunchRejected as e:
            raise self.reject(handler, e, "new window") from e
        return await self.verify_launch(handler, id_token, state, require_cookie=False)

    # --- launch ---------------------------------------------------------------------------------

    def _state(self, handler: Any, state: str, require_cookie: bool = True) -> dict[str, Any]:
        secret = handler.application.settings["cookie_secret"]
        raw = decode_signed_value(secret, STATE_NAME, state, max_age_days=self.state_max_age / 86400)
        if raw is None:
            raise LaunchRejected("The login attempt expired or was altered; launch again from the LMS.")
        payload: dict[str, Any] = json.loads(raw)
        if self.state_cookie_required and require_cookie:
            cookie = handler.get_secure_cookie(STATE_NAME, max_age_days=self.state_max_age / 86400)
            if cookie is None or cookie.decode() != payload["bind"]:
                raise LaunchRejected(
                    "This browser did not start this launch (state cookie missing); "
                    "launch again from the LMS."
                )
        return payload

    async def verify_launch(
        self, handler: Any, id_token: str, state: str, require_cookie: bool = True
    ) -> dict[str, Any]:
        """The claims of a launch's id_token after checking state, signature, platform and nonce.

        Raises HTTPError (logged with context) for a launch that fails any check. ``require_cookie``
        is False only for a launch completed in a new window (see :mod:`hubkit.auth.framing`).
        """
        context = "iss=?"
        try:
            if not id_token:
                raise LaunchRejected("The launch carries no id_token; open the hub again from the LMS.", 400)
            if len(id_token) > 4 * int(self.max_parameter_length):
                raise LaunchRejected("The launch carries an id_token that is too large.", 413)
            payload = self._state(handler, state, require_cookie)
            context = f"iss={payload['iss'][:100]!r}, client_id={payload['client_id'][:64]!r}"
            platform = self.registry().get(payload["iss"])
            if platform is None:
                raise LaunchRejected("The launch comes from an LMS (issuer) this hub no longer knows.", 401)
            key = await self.jwks.key(platform.jwks_url, unverified_header(id_token).get("kid"))
            claims = verify_id_token(id_token, key, platform, payload["nonce"], float(self.id_token_max_age))
        except HubKitAuthError as e:
            raise self.reject(handler, e, context) from e
        setattr(handler, VERIFIED_ATTR, claims)
        return claims

    async def authenticate(self, handler: Any, data: Any = None) -> dict[str, Any]:
        """Upstream's signature: ``data`` is the decoded id_token that ``verify_launch`` checked on this
        request. ``{"id_token", "state"}`` (HubKit 0.1's form) is verified here first. Claims that were
        not verified on this request (say posted to ``/hub/login``) are refused."""
        claims: dict[str, Any] = data or {}
        if "id_token" in claims and "state" in claims:
            claims = await self.verify_launch(handler, str(claims["id_token"]), str(claims["state"]))
        context = f"iss={str(claims.get('iss', '?'))[:100]!r}, sub={str(claims.get('sub', '?'))[:64]!r}"
        verified = getattr(handler, VERIFIED_ATTR, None)
        try:
            if verified is None or verified is not claims:
                raise LaunchRejected("This launch was not verified; launch again from the LMS.", 401)
            platform = self.registry().get(str(claims["iss"]))
            if platform is None:
                raise LaunchRejected("The launch comes from an LMS (issuer) this hub no longer knows.", 401)
            nonce = (f"lti13:{platform.issuer}", str(claims["nonce"]), 2.0 * self.state_max_age)
            return await self._auth_model(handler, platform, claims, nonce)
        except HubKitAuthError as e:
            raise self.reject(handler, e, context) from e

    async def _auth_model(
        self, handler: Any, platform: Platform, claims: dict[str, Any], nonce: tuple[str, str, float]
    ) -> dict[str, Any]:
        limits = self.launch_limits()
        user_id = check_user_id(str(claims["sub"]))
        custom = {str(k): str(v) for k, v in (claims.get(CUSTOM) or {}).items()}
        key_name = self.username_key or "sub"
        raw_name = (
            custom.get(key_name.removeprefix("custom_"))
            if key_name.startswith("custom_")
            else claims.get(key_name)
        )
        username = self.normalize_username(check_username(str(raw_name or user_id), limits))
        target = launch_target(target_request(custom), handler.base_url, self.allowed_git_hosts)
        link = target_link_path(str(claims.get(TARGET_LINK) or ""), handler.request.host, handler.base_url)
        if target is None and link:  # as upstream: land on the (signed) target link
            target = launch_target(TargetRequest(next_url=link), handler.base_url, self.allowed_git_hosts)
        context = claims.get(CONTEXT) or {}
        groups = course_groups(str(context.get("id") or ""), [str(r) for r in claims.get(ROLES) or []])
        pending = self.hubkit_pending(
            f"lti:{platform.issuer}:{user_id}", username, nonce=nonce, allocated_groups=groups
        )
        setattr(handler, TARGET_ATTR, target)
        return {
            "name": username,
            "groups": groups,
            # Upstream's auth_state (the verified claims), HubKit's keys beside them.
            "auth_state": {**claims, "lti13": claims, "lti_issuer": platform.issuer},
            COURSE_KEY: launch_course(str(context.get("id") or "")),  # only this course's groups change
            PENDING_KEY: pending,  # written (nonce, binding, ids) once check_allowed admits the launch
        }
