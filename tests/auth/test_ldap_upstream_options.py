"""ldapauthenticator's own options on HubKit's LDAP authenticator (issue 21), against the real slapd.

Each test here failed before the fix: ``tls_kwargs`` and the search filters were ignored (security), the
other options had no effect, and a refused login wrote HubKit's tables.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import hubkit_rows, password_of
from conftest import password_login as login

from hubkit_testing.certs import PKI, make_pki
from hubkit_testing.hub import Hub
from hubkit_testing.ldap import SlapdServer


class TLSSlapd(SlapdServer):
    """The test slapd with StartTLS, serving a certificate from a CA nobody trusts by default."""

    def __init__(self, work_dir: Path, pki: PKI) -> None:
        super().__init__(work_dir)
        self.pki = pki

    def _prepare_database(self) -> None:
        super()._prepare_database()
        conf = self.work_dir / "slapd.conf"
        tls = (
            f"TLSCACertificateFile {self.pki.ca_cert}\n"
            f"TLSCertificateFile {self.pki.serving_cert}\n"
            f"TLSCertificateKeyFile {self.pki.serving_key}\n"
        )
        conf.write_text(tls + conf.read_text())  # global directives, before the database section


@pytest.fixture(scope="module")
def tls_ldap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSSlapd]:
    work = tmp_path_factory.mktemp("tls-slapd")
    pki = make_pki(work / "pki", ips=["127.0.0.1"], dns_names=["localhost"])
    with TLSSlapd(work, pki) as server:
        yield server


async def test_tls_kwargs_validate_refuses_an_unverified_server_before_any_password_is_sent(
    ldap_hub_factory: Callable[..., Hub], tls_ldap: TLSSlapd
) -> None:
    extra = (
        'c.LDAPAuthenticator.tls_strategy = "before_bind"\n'
        f"c.LDAPAuthenticator.tls_kwargs = {{'validate': {int(ssl.CERT_REQUIRED)}}}\n"
    )
    hub = ldap_hub_factory([tls_ldap.url], extra)
    slapd_log_offset = len(tls_ldap.log_path.read_text())
    r = await login(hub, "bob", password_of(tls_ldap, "bob"))
    assert r.status_code == 503, r.text
    assert "TLS certificate could not be verified" in r.text
    await hub.api("GET", "/users/bob", expect=404)
    assert "CERTIFICATE_VERIFY_FAILED" in hub.log_path.read_text()
    assert " BIND " not in tls_ldap.log_path.read_text()[slapd_log_offset:]  # no credentials went out


async def test_tls_kwargs_with_the_ca_verifies_the_server_and_logs_in(
    ldap_hub_factory: Callable[..., Hub], tls_ldap: TLSSlapd
) -> None:
    tls = {"validate": int(ssl.CERT_REQUIRED), "ca_certs_file": str(tls_ldap.pki.ca_cert)}
    extra = f'c.LDAPAuthenticator.tls_strategy = "before_bind"\nc.LDAPAuthenticator.tls_kwargs = {tls!r}\n'
    hub = ldap_hub_factory([tls_ldap.url], extra)
    r = await login(hub, "bob", password_of(tls_ldap, "bob"))
    assert r.status_code == 302, r.text
    assert "STARTTLS" in tls_ldap.log_path.read_text()


@pytest.mark.parametrize(
    "option",
    [
        'c.LDAPAuthenticator.search_filter = "(&({userattr}={username})(loginShell=/bin/bash))"',
        'c.LDAPAuthenticator.lookup_dn_search_filter = "(&({login_attr}={login})(loginShell=/bin/bash))"',
    ],
    ids=["search_filter", "lookup_dn_search_filter"],
)
async def test_a_user_the_filter_excludes_is_refused(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer, option: str
) -> None:
    """dave (login shell zsh) is in chemistry, the allowed group; the filter keeps him out."""
    d = ldap_server.directory
    extra = f"c.LDAPAuthenticator.allowed_groups = [{d.group_dn('chemistry')!r}]\n{option}\n"
    hub = ldap_hub_factory([ldap_server.url], extra)
    r = await login(hub, "dave", password_of(ldap_server, "dave"))
    assert r.status_code == 403
    await hub.api("GET", "/users/dave", expect=404)
    assert hubkit_rows(hub, "dave") == []
    # alice matches the filter and is in chemistry too.
    assert (await login(hub, "alice", password_of(ldap_server, "alice"))).status_code == 302


async def test_lookup_dn_username_attributes_and_group_filter_as_upstream(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer
) -> None:
    d = ldap_server.directory
    chemistry, physics = d.group_dn("chemistry"), d.group_dn("physics")
    extra = f"""
c.LDAPAuthenticator.allowed_groups = [{physics!r}, {chemistry!r}]
c.LDAPAuthenticator.group_search_filter = "(member={{userdn}})"
c.LDAPAuthenticator.lookup_dn_user_dn_attribute = "mail"
c.LDAPAuthenticator.use_lookup_dn_username = True
c.LDAPAuthenticator.auth_state_attributes = ["mail", "loginShell"]
"""
    hub = ldap_hub_factory([ldap_server.url], extra)
    r = await login(hub, "alice", password_of(ldap_server, "alice"))
    assert r.status_code == 302, r.text
    model = await hub.api("GET", "/users/alice@hubkit.test")
    state = model["auth_state"]
    assert state["ldap_groups"] == [chemistry]  # upstream's key, from group_search_filter
    assert state["user_attributes"] == {"mail": ["alice@hubkit.test"], "loginShell": ["/bin/bash"]}
    assert state["hubkit"]["uid"] == d.user("alice").uid_number  # HubKit's identity beside them
    # carol is in physics only through the nested physics-staff: the custom filter does not see that.
    r = await login(hub, "carol", password_of(ldap_server, "carol"))
    assert r.status_code == 403
    assert hubkit_rows(hub, "carol") == []


async def test_valid_username_regex_is_applied(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer
) -> None:
    hub = ldap_hub_factory([ldap_server.url], 'c.LDAPAuthenticator.valid_username_regex = "^[a-c][a-z]*$"')
    assert (await login(hub, "bob", password_of(ldap_server, "bob"))).status_code == 302
    assert (await login(hub, "dave", password_of(ldap_server, "dave"))).status_code == 403
    assert "'dave' does not match valid_username_regex" in hub.log_path.read_text()


async def test_a_user_outside_the_allowed_groups_writes_nothing(
    ldap_hub: Hub, ldap_server: SlapdServer
) -> None:
    r = await login(ldap_hub, "dave", password_of(ldap_server, "dave"))
    assert r.status_code == 403
    assert hubkit_rows(ldap_hub, "dave") == []
