"""Fixtures of the auth tests: the LMS simulator and hubs configured with HubKit's authenticators.

Hubs here are module-scoped (one hub serves all tests of a module, each test using its own users):
starting JupyterHub costs seconds on the shared 2-core machine.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hubkit_testing.fake_github import FakeGitHub, GitHubOrg, GitHubTeam, GitHubUser
from hubkit_testing.fake_oidc import FakeOIDC
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.ldap import SlapdServer
from hubkit_testing.lms_simulator import LMSConfig, LMSSimulator
from hubkit_testing.processes import free_port

CRYPT_ENV = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
LTI11_CONSUMERS = {"hubkit-test": "hubkit-test-secret", "second-lms": "second-lms-secret"}
LTI11_ID_RANGE = (3_000_000, 3_000_999)


HUBKIT_TABLES = ("hubkit_posix_ids", "hubkit_usernames")


def hubkit_rows(hub: Hub, needle: str) -> list[tuple[str, str]]:
    """Rows of HubKit's identity tables (in the hub's database) whose owner/username/key contains
    ``needle``, as ``(table, row)``: what a login wrote for that person."""
    found: list[tuple[str, str]] = []
    with sqlite3.connect(hub.options.workdir / "jupyterhub.sqlite") as db:
        existing = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in (t for t in HUBKIT_TABLES if t in existing):  # created at the first admitted login
            for row in db.execute(f"SELECT * FROM {table}"):
                if needle in repr(row):
                    found.append((table, repr(row)))
    return found


async def password_login(hub: Hub, username: str, password: str) -> httpx.Response:
    """A login through the hub's own login form (LDAP, dummy), as a browser posts it."""
    async with hub.client() as c:
        await c.get("/hub/login")
        data = {"username": username, "password": password, "_xsrf": c.cookies.get("_xsrf") or ""}
        return await c.post("/hub/login", data=data)


def password_of(ldap: SlapdServer, uid: str) -> str:
    return ldap.directory.user(uid).password


def lti11_config(extra: str = "") -> str:
    return f"""
c.JupyterHub.authenticator_class = "hubkit-lti11"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.HubKitLTI11Authenticator.consumers = {LTI11_CONSUMERS!r}
c.HubKitLTI11Authenticator.allowed_git_hosts = ["github.com"]
c.HubKitLTI11Authenticator.id_range = {LTI11_ID_RANGE!r}
{extra}
"""


@pytest.fixture(scope="module")
def lms() -> Iterator[LMSSimulator]:
    """A started LMS simulator; hub fixtures point ``lms.config.hub_url`` at their hub."""
    sim = LMSSimulator(LMSConfig(hub_url="http://127.0.0.1:1")).start()
    try:
        yield sim
    finally:
        sim.stop()


def started(hub: Hub) -> Hub:
    """Start ``hub``; if it does not come up, stop what did start (a hub process, its proxy)."""
    try:
        return hub.start()
    except BaseException:
        hub.stop()
        raise


def start_hub(tmp_path_factory: pytest.TempPathFactory, config: str) -> Hub:
    return started(Hub(HubOptions(workdir=tmp_path_factory.mktemp("hub"), config=config, env=CRYPT_ENV)))


@pytest.fixture(scope="module")
def lti11_hub(tmp_path_factory: pytest.TempPathFactory, lms: LMSSimulator) -> Iterator[Hub]:
    """A hub whose only login is HubKit's LTI 1.1 authenticator, with the simulator registered."""
    hub = start_hub(tmp_path_factory, lti11_config())
    lms.config.hub_url = hub.url
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def lti11_hub_factory(hub_factory: Callable[..., Hub], lms: LMSSimulator) -> Callable[[str], Hub]:
    """Start a (test-scoped) LTI 1.1 hub with extra config; the simulator launches into the latest."""

    def make(extra: str) -> Hub:
        hub = hub_factory(config=lti11_config(extra), env=CRYPT_ENV)
        lms.config.hub_url = hub.url
        return hub

    return make


def lti13_platform(sim: LMSSimulator, jwks_url: str | None = None) -> dict[str, object]:
    return {
        "client_ids": [sim.config.client_id],
        "authorize_url": sim.authorize_url,
        "jwks_url": jwks_url or sim.jwks_url,
        "deployment_ids": [sim.config.deployment_id],
    }


@pytest.fixture(scope="module")
def broken_lms() -> Iterator[LMSSimulator]:
    """A second platform whose JWKS URL, as registered in the hub, points at a closed port."""
    sim = LMSSimulator(LMSConfig(hub_url="http://127.0.0.1:1", client_id="broken-client")).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def lti13_hub(
    tmp_path_factory: pytest.TempPathFactory, lms: LMSSimulator, broken_lms: LMSSimulator
) -> Iterator[Hub]:
    """A hub with HubKit's LTI 1.3 authenticator and two registered platforms (one with dead keys)."""
    platforms = {
        lms.issuer: lti13_platform(lms),
        broken_lms.issuer: lti13_platform(broken_lms, f"http://127.0.0.1:{free_port()}/jwks"),
    }
    config = f"""
c.JupyterHub.authenticator_class = "hubkit-lti13"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.HubKitLTI13Authenticator.platforms = {platforms!r}
c.HubKitLTI13Authenticator.allowed_git_hosts = ["github.com"]
c.HubKitLTI13Authenticator.id_range = (3001000, 3001999)
c.HubKitLTI13Authenticator.username_key = "sub"  # upstream's default is "email"
"""
    hub = start_hub(tmp_path_factory, config)
    lms.config.hub_url = broken_lms.config.hub_url = hub.url
    try:
        yield hub
    finally:
        hub.stop()


def multi_config(lms: LMSSimulator) -> str:
    """LTI 1.1 students (names ``lti:<user id>``) and a local login for staff on one hub."""
    return f"""
c.JupyterHub.authenticator_class = "hubkit-multi"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.Authenticator.admin_users = {{"admin"}}
c.HubKitMultiAuthenticator.authenticators = [
    {{"authenticator_class": "hubkit-lti11", "url_prefix": "", "username_prefix": "lti:",
      "label": "Your course (LTI 1.1)",
      "config": {{"consumers": {{{lms.config.consumer_key!r}: {lms.config.consumer_secret!r}}},
                 "id_range": (3002000, 3002999), "iframe_cookies": True}}}},
    {{"authenticator_class": "dummy", "url_prefix": "local", "username_prefix": "", "label": "Staff",
      "config": {{"password": "hubkit", "allowed_users": {{"admin", "staff"}}, "allow_all": False}}}},
]
"""


@pytest.fixture(scope="module")
def multi_hub(tmp_path_factory: pytest.TempPathFactory, lms: LMSSimulator) -> Iterator[Hub]:
    hub = start_hub(tmp_path_factory, multi_config(lms))
    lms.config.hub_url = hub.url
    try:
        yield hub
    finally:
        hub.stop()


def ldap_config(ldap: SlapdServer, urls: list[str], extra: str = "") -> str:
    d = ldap.directory
    return f"""
c.JupyterHub.authenticator_class = "hubkit-ldap"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.Authenticator.allow_all = False
c.LDAPAuthenticator.tls_strategy = "insecure"
c.LDAPAuthenticator.lookup_dn = True
c.LDAPAuthenticator.lookup_dn_search_user = {ldap.admin_dn!r}
c.LDAPAuthenticator.lookup_dn_search_password = {ldap.admin_password!r}
c.LDAPAuthenticator.user_search_base = {d.people_dn!r}
c.LDAPAuthenticator.user_attribute = "uid"
c.LDAPAuthenticator.allowed_groups = [{d.group_dn("physics")!r}]
c.HubKitLDAPAuthenticator.server_urls = {urls!r}
c.HubKitLDAPAuthenticator.group_search_base = {d.groups_dn!r}
c.HubKitLDAPAuthenticator.admin_groups = ["hubkit-admins"]
c.HubKitLDAPAuthenticator.connect_timeout = 1.0
c.HubKitLDAPAuthenticator.receive_timeout = 3.0
{extra}
"""


@pytest.fixture(scope="module")
def ldap_hub(tmp_path_factory: pytest.TempPathFactory, ldap_server: SlapdServer) -> Iterator[Hub]:
    """A hub on HubKit's LDAP authenticator; the first server of its pool is dead (failover)."""
    dead = f"ldap://127.0.0.1:{free_port()}"
    hub = start_hub(tmp_path_factory, ldap_config(ldap_server, [dead, ldap_server.url]))
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def ldap_hub_factory(hub_factory: Callable[..., Hub], ldap_server: SlapdServer) -> Callable[..., Hub]:
    """Start a (test-scoped) LDAP hub: ``ldap_hub_factory(server_urls, extra_config="")``."""

    def make(urls: list[str], extra: str = "") -> Hub:
        return hub_factory(config=ldap_config(ldap_server, urls, extra), env=CRYPT_ENV)

    return make


def sample_github() -> FakeGitHub:
    """hubkit-org: staff ⊃ gpu (child team), tas; octo public member in gpu, priv a private member."""
    gh = FakeGitHub().start()
    for login, uid in (("octo", 583231), ("priv", 583232), ("outsider", 583233), ("tina", 583234)):
        gh.users[login] = GitHubUser(login, uid, login.title())
    org = gh.orgs["hubkit-org"] = GitHubOrg(
        "hubkit-org", 5_000_001, {"octo": True, "priv": False, "tina": True}
    )
    org.teams["staff"] = GitHubTeam("staff", 6_000_001)
    org.teams["gpu"] = GitHubTeam("gpu", 6_000_002, {"octo"}, parent="staff")
    org.teams["tas"] = GitHubTeam("tas", 6_000_003, {"tina"})
    for i in range(12):  # enough teams for several pages
        org.teams[f"proj-{i:02d}"] = GitHubTeam(f"proj-{i:02d}", 6_100_000 + i, {"tina"})
    gh.max_per_page = 5
    return gh


def github_config(gh: FakeGitHub, hub: Hub, extra: str = "") -> str:
    return f"""
c.JupyterHub.authenticator_class = "hubkit-github"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.Authenticator.allow_all = False
c.GitHubOAuthenticator.github_url = {gh.url!r}
c.GitHubOAuthenticator.client_id = {gh.client_id!r}
c.GitHubOAuthenticator.client_secret = {gh.client_secret!r}
c.GitHubOAuthenticator.oauth_callback_url = {hub.url + "/hub/oauth_callback"!r}
c.GitHubOAuthenticator.scope = ["read:user", "read:org"]
c.GitHubOAuthenticator.allowed_organizations = {{"hubkit-org:staff", "hubkit-org:tas"}}
c.HubKitGitHubAuthenticator.admin_organizations = ["hubkit-org:tas"]
{extra}
"""


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    gh = sample_github()
    try:
        yield gh
    finally:
        gh.stop()


def make_github_hub(workdir: Path, gh: FakeGitHub, extra: str = "") -> Hub:
    hub = Hub(HubOptions(workdir=workdir, env=CRYPT_ENV))
    hub.options.config = github_config(gh, hub, extra)
    return started(hub)


@pytest.fixture(scope="module")
def github_hub(tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub) -> Iterator[Hub]:
    hub = make_github_hub(tmp_path_factory.mktemp("ghhub"), github, "c.Authenticator.auth_refresh_age = 1")
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def github_hub_factory(tmp_path: Path, github: FakeGitHub) -> Iterator[Callable[[str], Hub]]:
    """Start extra GitHub hubs with more config (stopped after the test)."""
    hubs: list[Hub] = []

    def make(extra: str) -> Hub:
        hubs.append(make_github_hub(tmp_path / f"gh{len(hubs)}", github, extra))
        return hubs[-1]

    try:
        yield make
    finally:
        for hub in hubs:
            hub.stop()


UNIVERSITY_IDP = "https://idp.hubkit-university.test"
GITHUB_IDP = "http://github.com/login/oauth/authorize"


@pytest.fixture(scope="module")
def oidc() -> Iterator[FakeOIDC]:
    op = FakeOIDC().start()
    try:
        yield op
    finally:
        op.stop()


def make_cilogon_hub(workdir: Path, oidc: FakeOIDC, extra: str = "") -> Hub:
    """Start a hub on HubKit's CILogon authenticator against ``oidc``, with per-IdP rules and ``extra``."""
    idps = {
        UNIVERSITY_IDP: {
            "username_derivation": {
                "username_claim": "email",
                "action": "strip_idp_domain",
                "domain": "hubkit-university.test",
            },
            "allow_all": True,
        },
        GITHUB_IDP: {
            "username_derivation": {"username_claim": "email", "action": "prefix", "prefix": "gh"},
            "allowed_domains": ["example.org"],
        },
    }
    hub = Hub(HubOptions(workdir=workdir, env=CRYPT_ENV))
    hub.options.config = f"""
c.JupyterHub.authenticator_class = "hubkit-cilogon"
c.JupyterHub.default_url = "/hub/home"
c.Authenticator.enable_auth_state = True
c.Authenticator.allow_all = False
c.CILogonOAuthenticator.client_id = {oidc.client_id!r}
c.CILogonOAuthenticator.client_secret = {oidc.client_secret!r}
c.CILogonOAuthenticator.oauth_callback_url = {hub.url + "/hub/oauth_callback"!r}
c.CILogonOAuthenticator.authorize_url = {oidc.url + "/authorize"!r}
c.CILogonOAuthenticator.token_url = {oidc.url + "/oauth2/token"!r}
c.CILogonOAuthenticator.userdata_url = {oidc.url + "/oauth2/userinfo"!r}
c.CILogonOAuthenticator.idps = {idps!r}
c.CILogonOAuthenticator.admin_groups = {{"cilogon:hubkit-admins"}}
c.HubKitCILogonAuthenticator.discovery_url = {oidc.url + "/.well-known/openid-configuration"!r}
c.HubKitCILogonAuthenticator.id_range = (3003000, 3003999)
{extra}
"""
    return started(hub)


@pytest.fixture(scope="module")
def cilogon_hub(tmp_path_factory: pytest.TempPathFactory, oidc: FakeOIDC) -> Iterator[Hub]:
    hub = make_cilogon_hub(tmp_path_factory.mktemp("cilogon"), oidc)
    try:
        yield hub
    finally:
        hub.stop()
