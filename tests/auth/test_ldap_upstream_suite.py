"""ldapauthenticator 2.0.2's own tests, scenario by scenario, on ``HubKitLDAPAuthenticator`` (issue 21).

Upstream's ``ldapauthenticator/tests/test_ldapauthenticator.py`` (tag 2.0.2; its PyPI sdist ships no
tests) logs in against the Planet Express directory of rroemhild/test-openldap. Each test here names the
upstream test it mirrors and keeps its inputs and expected outcomes; the class is HubKit's, the
directory is :mod:`hubkit_testing.planet_express` on a real slapd (one per module, StartTLS and LDAPS),
and each test gets a fresh HubKit ledger. One input differs everywhere: upstream's CI maps the server to
the default ports 389/636, here slapd listens on free ports, so ``server_port`` names them.

Every upstream scenario passes with upstream's expected outcome (docs/auth.md, "Differences from
upstream", lists none for this suite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ldap3.core.exceptions import LDAPSSLConfigurationError
from ldapauthenticator.ldapauthenticator import TlsStrategy  # type: ignore[import-untyped]
from traitlets.config import Config

from hubkit.auth.ldap import HubKitLDAPAuthenticator
from hubkit_testing.planet_express import PEOPLE_DN, PlanetExpressSlapd, group_dn

Model = dict[str, Any]


@pytest.fixture
def c(planet_express: PlanetExpressSlapd, tmp_path: Path) -> Config:
    """Upstream's base configuration (its conftest's ``c``), pointed at this module's slapd."""
    c = Config()
    c.LDAPAuthenticator.server_address = planet_express.host
    c.LDAPAuthenticator.server_port = planet_express.port
    c.LDAPAuthenticator.lookup_dn = True
    c.LDAPAuthenticator.bind_dn_template = f"cn={{username}},{PEOPLE_DN}"
    c.LDAPAuthenticator.user_search_base = PEOPLE_DN
    c.LDAPAuthenticator.user_attribute = "uid"
    c.LDAPAuthenticator.lookup_dn_user_dn_attribute = "cn"
    c.LDAPAuthenticator.attributes = ["uid", "cn", "mail", "ou"]
    c.LDAPAuthenticator.allowed_groups = [group_dn("admin_staff"), group_dn("ship_crew")]
    c.HubKitLDAPAuthenticator.hubkit_db_url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    return c


async def login(authenticator: HubKitLDAPAuthenticator, username: str, password: str) -> Model | None:
    """What upstream's tests call: ``get_authenticated_user(None, {...})`` (allow checks, post-auth hook)."""
    model: Model | None = await authenticator.get_authenticated_user(
        None, {"username": username, "password": password}
    )
    return model


async def test_ldap_auth_allowed(c: Config, planet_express: PlanetExpressSlapd) -> None:
    """Mirrors upstream ``test_ldap_auth_allowed``: fry, in ship_crew, logs in (over StartTLS, the
    default ``tls_strategy``, as against upstream's CI server)."""
    log_offset = len(planet_express.log_path.read_text())
    authorized = await login(HubKitLDAPAuthenticator(config=c), "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"
    assert "STARTTLS" in planet_express.log_path.read_text()[log_offset:]


async def test_ldap_auth_disallowed(c: Config) -> None:
    """Mirrors upstream ``test_ldap_auth_disallowed``: a bad name, wrong and blank passwords, an unknown
    user and zoidberg (right password, in neither allowed group) are all refused."""
    authenticator = HubKitLDAPAuthenticator(config=c)
    assert await login(authenticator, "3fry/", "raw") is None
    assert await login(authenticator, "fry", "raw") is None
    assert await login(authenticator, "fry", "") is None
    assert await login(authenticator, "flexo", "imposter") is None
    assert await login(authenticator, "zoidberg", "zoidberg") is None


@pytest.mark.parametrize(
    "bind_dn_template",
    [
        f"cn={{username}},{PEOPLE_DN}",
        [f"cn={{username}},{PEOPLE_DN}"],
        [f"cn={{username}},{PEOPLE_DN}", ""],
    ],
    ids=["str", "list", "list-with-empty"],
)
async def test_ldap_auth_bind_dn_template(c: Config, bind_dn_template: str | list[str]) -> None:
    """Mirrors upstream ``test_ldap_auth_bind_dn_template`` (the same three parameters)."""
    c.LDAPAuthenticator.bind_dn_template = bind_dn_template
    authorized = await login(HubKitLDAPAuthenticator(config=c), "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"


async def test_ldap_use_ssl_deprecation(c: Config) -> None:
    """Mirrors upstream ``test_ldap_use_ssl_deprecation``: ``use_ssl = True`` means ``on_connect``."""
    authenticator = HubKitLDAPAuthenticator(config=c)
    assert authenticator.tls_strategy == TlsStrategy.before_bind
    authenticator.use_ssl = True
    assert authenticator.tls_strategy == TlsStrategy.on_connect


async def test_ldap_auth_tls_strategy_on_connect(c: Config, planet_express: PlanetExpressSlapd) -> None:
    """Mirrors upstream ``test_ldap_auth_tls_strategy_on_connect``, over LDAPS (upstream: port 636)."""
    c.LDAPAuthenticator.tls_strategy = "on_connect"
    c.LDAPAuthenticator.server_port = planet_express.ldaps_port
    log_offset = len(planet_express.log_path.read_text())
    authorized = await login(HubKitLDAPAuthenticator(config=c), "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"
    assert f"(IP=127.0.0.1:{planet_express.ldaps_port})" in planet_express.log_path.read_text()[log_offset:]


async def test_ldap_auth_tls_strategy_insecure(c: Config) -> None:
    """Mirrors upstream ``test_ldap_auth_tls_strategy_insecure``."""
    c.LDAPAuthenticator.tls_strategy = "insecure"
    authorized = await login(HubKitLDAPAuthenticator(config=c), "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"


async def test_ldap_auth_use_lookup_dn(c: Config) -> None:
    """Mirrors upstream ``test_ldap_auth_use_lookup_dn``: the hub name is fry's cn, normalized."""
    c.LDAPAuthenticator.use_lookup_dn_username = True
    authorized = await login(HubKitLDAPAuthenticator(config=c), "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "philip j. fry"


async def test_ldap_auth_search_filter(c: Config) -> None:
    """Mirrors upstream ``test_ldap_auth_search_filter`` (its filter, tab included): fry of the
    Delivering Crew is admitted, zoidberg (Staff) is not."""
    c.LDAPAuthenticator.allowed_groups = []
    c.LDAPAuthenticator.allow_all = True
    c.LDAPAuthenticator.search_filter = "(&(objectClass=inetOrgPerson)(ou=\tDelivering Crew)(cn={username}))"
    authenticator = HubKitLDAPAuthenticator(config=c)
    authorized = await login(authenticator, "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"
    assert await login(authenticator, "zoidberg", "zoidberg") is None


async def test_allow_config(c: Config) -> None:
    """Mirrors upstream ``test_allow_config``: allowed_groups, allowed_users, neither, then allow_all."""
    c.LDAPAuthenticator.allowed_groups = [group_dn("ship_crew")]
    c.LDAPAuthenticator.allowed_users = {"zoidberg"}
    authenticator = HubKitLDAPAuthenticator(config=c)
    authorized = await login(authenticator, "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"
    authorized = await login(authenticator, "zoidberg", "zoidberg")
    assert authorized is not None
    assert authorized["name"] == "zoidberg"
    assert await login(authenticator, "professor", "professor") is None
    authenticator.allow_all = True
    authorized = await login(authenticator, "professor", "professor")
    assert authorized is not None
    assert authorized["name"] == "professor"


async def test_ldap_auth_state_attributes(c: Config) -> None:
    """Mirrors upstream ``test_ldap_auth_state_attributes``: ``auth_state["user_attributes"]``."""
    c.LDAPAuthenticator.auth_state_attributes = ["employeeType"]
    authorized = await login(HubKitLDAPAuthenticator(config=c), "fry", "fry")
    assert authorized is not None
    assert authorized["name"] == "fry"
    assert authorized["auth_state"]["user_attributes"] == {"employeeType": ["Delivery boy"]}


async def test_ldap_auth_state_attributes2(c: Config) -> None:
    """Mirrors upstream ``test_ldap_auth_state_attributes2``: a custom ``group_search_filter`` and
    ``group_attributes`` still admit leela (ship_crew); ``description`` lands in auth_state."""
    c.LDAPAuthenticator.group_search_filter = "(cn=ship_crew)"
    c.LDAPAuthenticator.group_attributes = ["cn"]
    c.LDAPAuthenticator.auth_state_attributes = ["description"]
    authorized = await login(HubKitLDAPAuthenticator(config=c), "leela", "leela")
    assert authorized is not None
    assert authorized["name"] == "leela"
    assert authorized["auth_state"]["user_attributes"] == {"description": ["Mutant"]}


async def test_ldap_tls_kwargs_config_passthrough(c: Config) -> None:
    """Mirrors upstream ``test_ldap_tls_kwargs_config_passthrough``: ``tls_kwargs`` reach ldap3's Tls,
    so a CA file that does not exist raises ldap3's configuration error."""
    c.LDAPAuthenticator.tls_kwargs = {"ca_certs_file": "does-not-exist-so-error-expected"}
    authenticator = HubKitLDAPAuthenticator(config=c)
    with pytest.raises(LDAPSSLConfigurationError):
        await login(authenticator, "leela", "leela")
