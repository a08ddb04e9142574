"""``HubKitMultiAuthenticator``: several authenticators on one hub, each owning its users.

Each configured authenticator is wrapped in a subclass whose handlers live under its own URL prefix and
see *it* (not the hub-wide multi authenticator) as ``handler.authenticator``; the names it produces get
its username prefix, so two providers can never produce the same hub user. Hub-level calls
(``refresh_user``, ``pre_spawn_start``, ``post_spawn_stop``, ``add_user``, ``delete_user``, allow checks)
go to the authenticator owning the user, found by that prefix.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

from jupyterhub.auth import Authenticator
from jupyterhub.utils import maybe_future, url_path_join
from traitlets import List, default
from traitlets.utils.importstring import import_item

from . import first_groups, framing
from .multi_config import SubSpec, parse_specs

LMS_LAUNCHED = ("lti/launch", "lti13/oauth_login")


def resolve_class(name: str | type) -> type:
    """An authenticator class from a ``jupyterhub.authenticators`` entry point name or an import path."""
    if isinstance(name, type):
        return name
    for ep in entry_points(group="jupyterhub.authenticators"):
        if ep.name == name:
            cls: type = ep.load()
            return cls
    found: type = import_item(name)
    return found


def wrap(cls: type, spec: SubSpec, multi: HubKitMultiAuthenticator) -> type:
    """A subclass of ``cls`` that lives under ``spec.url_prefix`` and prefixes the names it produces."""

    class Composed(cls):  # type: ignore[misc]
        hubkit_spec = spec
        hubkit_username_prefix = spec.username_prefix  # the hub name is prefix + the name produced

        def login_url(self, base_url: str) -> str:
            return str(super().login_url(url_path_join(base_url, spec.url_prefix)))

        def logout_url(self, base_url: str) -> str:
            return str(super().logout_url(url_path_join(base_url, spec.url_prefix)))

        def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
            owner = self

            def bind(handler: type) -> type:
                return type(handler.__name__, (handler,), {"authenticator": property(lambda _h: owner)})

            routes = super().get_handlers(app)
            return [("/" + url_path_join(spec.url_prefix, path).lstrip("/"), bind(h)) for path, h in routes]

        async def authenticate(self, handler: Any, data: Any = None) -> Any:
            result = await maybe_future(super().authenticate(handler, data))
            if result is None:
                return None
            model = {"name": result} if isinstance(result, str) else dict(result)
            if not spec.username_prefix and multi.claimed_by_prefix(model["name"]):
                self.log.warning(
                    "%s produced the name %r, which belongs to another login service's namespace; refused.",
                    spec.label,
                    model["name"],
                )
                return None
            model["name"] = spec.username_prefix + model["name"]
            return model

    Composed.__name__ = Composed.__qualname__ = cls.__name__
    return Composed


class HubKitMultiAuthenticator(Authenticator):  # type: ignore[misc]
    """Several authenticators on one hub: one login page, URL prefixes, namespaced users."""

    authenticators: List[Any] = List(
        config=True,
        help="""The composed authenticators, in login-page order. Each entry is a dict:
        ``authenticator_class`` (entry point name such as ``"hubkit-lti11"``, ``"hubkit-github"``,
        ``"dummy"``, or an import path), ``url_prefix`` (its handlers live under ``/hub/<prefix>``;
        may be empty for one of them), ``username_prefix`` (default ``"<prefix>:"``; put before every
        name it produces so providers never share users; at most one may be empty, and names from it
        that start with another prefix are refused), ``label`` (shown on the login page), ``lms_url``
        (for an LMS-launched one: where its users find the course; the login page links to it) and
        ``config`` (trait values for that authenticator, e.g. ``{"consumers": {...}}``). Class-level
        config such
        as ``c.HubKitLTI11Authenticator.consumers`` applies as well. ``admin_users``/``allowed_users``
        inside a composed authenticator's config are compared with full (prefixed) hub names.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.specs = parse_specs(self.authenticators)
        self.subs = [
            wrap(resolve_class(spec.class_name), spec, self)(parent=self, **spec.config)
            for spec in self.specs
        ]
        configured = {
            **self.config.get("Authenticator", {}),
            **self.config.get("HubKitMultiAuthenticator", {}),
        }
        if "manage_groups" not in configured:
            # The hub asks the multi authenticator whether groups are managed: yes if any part manages them.
            self.manage_groups = any(sub.manage_groups for sub in self.subs)

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        return False

    # --- routing --------------------------------------------------------------------------------

    def claimed_by_prefix(self, name: str) -> bool:
        return any(s.username_prefix and name.startswith(s.username_prefix) for s in self.specs)

    def owner_of(self, username: str) -> Any:
        """The composed authenticator whose namespace ``username`` is in."""
        ranked = sorted(zip(self.specs, self.subs, strict=True), key=lambda p: -len(p[0].username_prefix))
        for spec, sub in ranked:
            if username.startswith(spec.username_prefix):
                return sub
        return self.subs[0]

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        from jupyterhub.handlers.login import LoginHandler

        handlers: list[tuple[str, Any]] = [("/login", LoginHandler)]
        for sub in self.subs:
            handlers.extend(sub.get_handlers(app))
        return handlers

    def get_custom_html(self, base_url: str) -> str:
        return "".join(self._login_entries(base_url))

    def _login_entries(self, base_url: str) -> Iterator[str]:
        yield '<div class="hubkit-login-services"><h2>Sign in</h2>'
        for spec, sub in zip(self.specs, self.subs, strict=True):
            url = sub.login_url(base_url)
            label = html.escape(spec.label or sub.login_service or type(sub).__name__)
            if any(url.endswith(suffix) for suffix in LMS_LAUNCHED):
                yield _lms_entry(label, spec.lms_url)
            elif url.endswith("/login") and not sub.login_service:
                yield (
                    f'<form action="{html.escape(url)}" method="post"><h3>{label}</h3>'
                    '<input type="hidden" name="_xsrf" value="{{ xsrf }}">'
                    '<input name="username" placeholder="Username" autocapitalize="off">'
                    '<input name="password" type="password" placeholder="Password">'
                    f'<button type="submit">Sign in ({label})</button></form>'
                )
            else:
                yield f'<p><a class="btn btn-jupyter" href="{html.escape(url)}">Sign in with {label}</a></p>'
        yield "</div>"

    # --- forwarded hub-level calls --------------------------------------------------------------

    async def authenticate(self, handler: Any, data: Any = None) -> Any:
        # Only reached through a handler not owned by a composed authenticator: refuse plainly.
        self.log.warning("Login attempt at the multi authenticator itself; use one of the listed services.")
        return None

    async def refresh_user(self, user: Any, handler: Any = None) -> Any:
        result = await maybe_future(self.owner_of(user.name).refresh_user(user, handler))
        if isinstance(result, dict):
            result = {**result, "name": user.name}
            if self.manage_groups:
                result.setdefault("groups", None)
        return result

    def pre_spawn_start(self, user: Any, spawner: Any) -> Any:
        return self.owner_of(user.name).pre_spawn_start(user, spawner)

    def post_spawn_stop(self, user: Any, spawner: Any) -> Any:
        return self.owner_of(user.name).post_spawn_stop(user, spawner)

    async def run_post_auth_hook(self, handler: Any, auth_model: Any) -> Any:
        auth_model = await super().run_post_auth_hook(handler, auth_model)
        if self.manage_groups:
            first_groups.remember(getattr(handler, "db", None), auth_model, self.log)
        return auth_model

    def hubkit_singleuser_args(self) -> list[str]:
        """The single-user ``frame-ancestors`` of every composed LTI authenticator's LMS origins."""
        origins = [o for sub in self.subs for o in getattr(sub, "hubkit_frame_origins", list)()]
        return framing.singleuser_args(origins)

    def add_user(self, user: Any) -> Any:
        return self.owner_of(user.name).add_user(user)

    def delete_user(self, user: Any) -> Any:
        return self.owner_of(user.name).delete_user(user)

    def check_allowed(self, username: str, authentication: Any = None) -> Any:
        return self.owner_of(username).check_allowed(username, authentication)

    def check_blocked_users(self, username: str, authentication: Any = None) -> Any:
        return self.owner_of(username).check_blocked_users(username, authentication)

    def is_admin(self, handler: Any, authentication: Any) -> Any:
        return self.owner_of(authentication["name"]).is_admin(handler, authentication)

    def check_allow_config(self) -> None:
        for sub in self.subs:
            sub.check_allow_config()


def _lms_entry(label: str, lms_url: str) -> str:
    """The login page's line for an LMS-launched service: a link to the LMS when one is configured."""
    if not lms_url:
        return f'<p class="hubkit-lms">{label}: open this hub from your course in the LMS.</p>'
    link = f'<a href="{html.escape(lms_url)}">your course in the LMS</a>'
    return f'<p class="hubkit-lms">{label}: open this hub from {link} (it signs you in from there).</p>'
