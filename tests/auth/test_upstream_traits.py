"""Every upstream option is honoured or refused at start-up, never silently ignored (issue 21).

For each HubKit authenticator the upstream parent's ``config=True`` traits are enumerated: each must be
listed below as honoured (with where that is shown) or be in the class's ``hubkit_refused`` table, which
stops the hub at start-up with a sentence saying what to use instead. A new upstream release that adds
an option fails here until someone decides which it is.
"""

from __future__ import annotations

from typing import Any

import pytest
from jupyterhub.auth import Authenticator
from oauthenticator.oauth2 import OAuthenticator
from traitlets.config import Config

from hubkit.auth import (
    HubKitCILogonAuthenticator,
    HubKitGitHubAuthenticator,
    HubKitLDAPAuthenticator,
    HubKitLTI11Authenticator,
    HubKitLTI13Authenticator,
)
from hubkit.auth.accounts import IdentityAuthenticatorMixin

# JupyterHub's own options: applied by the hub around the authenticator (allow/block lists, refresh,
# hooks, roles); HubKit's checks call or mirror the upstream allow rules.
AUTHENTICATOR = set(Authenticator.class_traits(config=True))
# oauthenticator's shared options, used by the upstream code HubKit runs (token exchange, userinfo,
# allowed/admin groups through get_user_groups, hooks). test_github / test_cilogon exercise them.
OAUTH = set(OAuthenticator.class_traits(config=True)) - AUTHENTICATOR
HONOURED: dict[type, set[str]] = {
    # test_ldap.py, test_ldap_upstream_options.py (tls_kwargs, filters, lookup options, auth_state);
    # escape_userdn and use_ssl keep upstream's deprecation behaviour (a warning, resp. tls_strategy).
    HubKitLDAPAuthenticator: AUTHENTICATOR
    | {
        "allowed_groups",
        "attributes",
        "auth_state_attributes",
        "bind_dn_template",
        "escape_userdn",
        "group_attributes",
        "group_search_filter",
        "lookup_dn",
        "lookup_dn_search_filter",
        "lookup_dn_search_password",
        "lookup_dn_search_user",
        "lookup_dn_user_dn_attribute",
        "search_filter",
        "server_address",
        "server_port",
        "tls_kwargs",
        "tls_strategy",
        "use_lookup_dn_username",
        "use_ssl",
        "user_attribute",
        "user_search_base",
        "valid_username_regex",
    },
    # config_* and tool_* feed upstream's config handlers, which HubKit registers unchanged.
    HubKitLTI11Authenticator: AUTHENTICATOR
    | {"config_description", "config_icon", "config_title", "consumers", "uri_scheme", "username_key"},
    HubKitLTI13Authenticator: AUTHENTICATOR
    | {
        "authorize_url",
        "client_id",
        "issuer",
        "jwks_endpoint",
        "tool_description",
        "tool_name",
        "uri_scheme",
        "username_key",
    },
    HubKitGitHubAuthenticator: AUTHENTICATOR
    | OAUTH
    | {
        "allowed_organizations",
        "github_api",
        "github_client_id",
        "github_client_secret",
        "github_organization_whitelist",
        "github_url",
        "populate_teams_in_auth_state",
    },
    # The deprecated idp/idp_whitelist/strip_idp_domain/... raise upstream's own errors.
    HubKitCILogonAuthenticator: AUTHENTICATOR
    | OAUTH
    | {
        "additional_username_claims",
        "allowed_idps",
        "cilogon_host",
        "idp",
        "idp_whitelist",
        "idps",
        "shown_idps",
        "skin",
        "strip_idp_domain",
    },
}


def upstream_parent(cls: type) -> type:
    """The upstream class a HubKit authenticator subclasses (the first base outside hubkit.auth)."""
    return next(
        base
        for base in cls.__mro__[1:]
        if not base.__module__.startswith("hubkit.") and issubclass(base, Authenticator)
    )


@pytest.mark.parametrize("cls", list(HONOURED), ids=lambda c: c.__name__)
def test_every_upstream_option_is_honoured_or_refused(cls: Any) -> None:
    upstream = set(upstream_parent(cls).class_traits(config=True))
    refused = set(cls.hubkit_refused)
    assert refused <= upstream, "hubkit_refused names an option the upstream class does not have"
    assert not refused & HONOURED[cls], f"listed both as honoured and refused: {refused & HONOURED[cls]}"
    unclassified = upstream - HONOURED[cls] - refused
    assert not unclassified, f"{cls.__name__}: upstream options neither honoured nor refused: {unclassified}"
    stale = HONOURED[cls] - upstream - AUTHENTICATOR  # upstream may make a hub option non-config
    assert not stale, f"{cls.__name__}: listed as honoured but not an upstream option: {stale}"


# A value each refused option is refused with (every refused option needs one).
REFUSED_PROBES: dict[tuple[type, str], Any] = {(HubKitLTI13Authenticator, "jwks_algorithms"): ["HS256"]}


def refused_cases() -> list[tuple[type, str, Any, str]]:
    return [
        (cls, name, accepted, instead)
        for cls in HONOURED
        for name, (accepted, instead) in cls.hubkit_refused.items()
    ]


@pytest.mark.parametrize(("cls", "name", "accepted", "instead"), refused_cases())
def test_a_refused_option_stops_start_up_with_what_to_do_instead(
    cls: Any, name: str, accepted: Any, instead: str
) -> None:
    section = upstream_parent(cls).__name__
    with pytest.raises(ValueError, match="is not supported by HubKit") as raised:
        cls(config=Config({section: {name: REFUSED_PROBES[(cls, name)]}}))
    assert instead in str(raised.value)
    assert isinstance(cls(config=Config({section: {name: accepted}})), IdentityAuthenticatorMixin)
