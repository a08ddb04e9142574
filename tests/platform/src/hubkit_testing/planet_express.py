"""The "Planet Express" directory that ldapauthenticator's own CI runs against, served by the test slapd.

ldapauthenticator 2.0.2's tests log in against the docker image rroemhild/test-openldap, whose directory
(``dc=planetexpress,dc=com``, people and groups from Futurama) is described in that project's README.
This is the same directory written down as data here (HubKit's tests cannot pull images): the same DNs,
passwords, attributes and group members, minus the ``jpegPhoto`` values no test reads. The two groups
are ``groupOfNames`` (the image uses a class it calls ``Group`` with the same ``member`` attribute).

:class:`PlanetExpressSlapd` serves it like the image does: plain LDAP with StartTLS and LDAPS, with a
certificate from a throwaway CA (the image's certificate is self-signed; upstream's tests do not verify
it, which ldap3's default ``Tls(validate=CERT_NONE)`` allows).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .certs import PKI, make_pki
from .ldap import Attributes, Entry, LDAPDirectory, SlapdServer, escape_rdn, ssha
from .processes import free_port

BASE_DN = "dc=planetexpress,dc=com"
PEOPLE_DN = f"ou=people,{BASE_DN}"
ADMIN_PASSWORD = "GoodNewsEveryone"


@dataclass(frozen=True)
class CrewMember:
    """One ``inetOrgPerson`` of the directory; everybody's password is their uid, as in the image."""

    cn: str
    sn: str
    uid: str
    description: str
    ou: str
    given_name: str
    mail: tuple[str, ...]
    employee_types: tuple[str, ...] = ()
    display_name: str = ""
    title: str = ""
    sn_in_rdn: bool = False  # Amy's DN is multi-valued: cn=Amy Wong+sn=Kroker

    @property
    def password(self) -> str:
        return self.uid

    @property
    def dn(self) -> str:
        rdn = f"cn={escape_rdn(self.cn)}" + (f"+sn={escape_rdn(self.sn)}" if self.sn_in_rdn else "")
        return f"{rdn},{PEOPLE_DN}"


CREW = (
    CrewMember(
        "Hubert J. Farnsworth", "Farnsworth", "professor", "Human", "Office Management", "Hubert",
        ("professor@planetexpress.com", "hubert@planetexpress.com"), ("Owner", "Founder"),
        "Professor Farnsworth", "Professor",
    ),
    CrewMember(
        "Philip J. Fry", "Fry", "fry", "Human", "Delivering Crew", "Philip", ("fry@planetexpress.com",),
        ("Delivery boy",), "Fry",
    ),
    CrewMember(
        "John A. Zoidberg", "Zoidberg", "zoidberg", "Decapodian", "Staff", "John",
        ("zoidberg@planetexpress.com",), ("Doctor",), "Zoidberg", "Ph. D.",
    ),
    CrewMember(
        "Hermes Conrad", "Conrad", "hermes", "Human", "Office Management", "Hermes",
        ("hermes@planetexpress.com",), ("Bureaucrat", "Accountant"),
    ),
    CrewMember(
        "Turanga Leela", "Turanga", "leela", "Mutant", "Delivering Crew", "Leela",
        ("leela@planetexpress.com",), ("Captain", "Pilot"),
    ),
    CrewMember(
        "Bender Bending Rodríguez", "Rodríguez", "bender", "Robot", "Delivering Crew", "Bender",
        ("bender@planetexpress.com",), ("Ship's Robot",),
    ),
    CrewMember(
        "Amy Wong", "Kroker", "amy", "Human", "Intern", "Amy", ("amy@planetexpress.com",), sn_in_rdn=True
    ),
)  # fmt: skip
GROUPS = {
    "admin_staff": ("professor", "hermes"),
    "ship_crew": ("leela", "fry", "bender"),
}


def crew(uid: str) -> CrewMember:
    """Look up a crew member by uid, failing loudly on a typo in a test."""
    found = [member for member in CREW if member.uid == uid]
    if not found:
        raise KeyError(f"The Planet Express directory has no uid {uid!r}.")
    return found[0]


def group_dn(cn: str) -> str:
    """Groups live next to the people, in ``ou=people``, as in the image."""
    return f"cn={escape_rdn(cn)},{PEOPLE_DN}"


def _person(member: CrewMember) -> Attributes:
    attrs: Attributes = {
        "objectClass": ["inetOrgPerson"],
        "cn": [member.cn],
        "sn": [member.sn],
        "uid": [member.uid],
        "description": [member.description],
        "ou": [member.ou],
        "givenName": [member.given_name],
        "mail": list(member.mail),
        "userPassword": [ssha(member.password, member.uid.encode().ljust(8, b"."))],
    }
    if member.employee_types:
        attrs["employeeType"] = list(member.employee_types)
    if member.display_name:
        attrs["displayName"] = [member.display_name]
    if member.title:
        attrs["title"] = [member.title]
    return attrs


def planet_express_entries() -> list[Entry]:
    """The whole directory as entries (a pure function), groups after the people they list."""
    organization: Attributes = {"objectClass": ["dcObject", "organization"], "dc": ["planetexpress"]}
    organization["o"] = ["Planet Express"]
    entries: list[Entry] = [
        (BASE_DN, organization),
        (PEOPLE_DN, {"objectClass": ["organizationalUnit"], "ou": ["people"]}),
    ]
    entries += [(member.dn, _person(member)) for member in CREW]
    for cn, uids in GROUPS.items():
        members = [crew(uid).dn for uid in uids]
        entries.append((group_dn(cn), {"objectClass": ["groupOfNames"], "cn": [cn], "member": members}))
    return entries


class PlanetExpressSlapd(SlapdServer):
    """slapd serving the Planet Express directory on ``ldap://`` (StartTLS offered) and ``ldaps://``."""

    def __init__(self, work_dir: Path, pki: PKI) -> None:
        super().__init__(
            work_dir,
            LDAPDirectory(
                base_dn=BASE_DN, admin_password=ADMIN_PASSWORD, users=(), posix_groups=(), named_groups=()
            ),
        )
        self.pki = pki
        self.ldaps_port = 0

    def offline_entries(self) -> list[Entry]:
        return planet_express_entries()

    def global_conf(self) -> str:
        return (
            f"TLSCACertificateFile {self.pki.ca_cert}\n"
            f"TLSCertificateFile {self.pki.serving_cert}\n"
            f"TLSCertificateKeyFile {self.pki.serving_key}\n"
        )

    def listen_urls(self) -> list[str]:
        self.ldaps_port = free_port()
        return [f"{self.url}/", f"ldaps://{self.host}:{self.ldaps_port}/"]


@pytest.fixture(scope="module")
def planet_express(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlanetExpressSlapd]:
    """A running slapd with the Planet Express directory, one per test module."""
    work = tmp_path_factory.mktemp("planet-express")
    pki = make_pki(work / "pki", ips=["127.0.0.1"], dns_names=["localhost"])
    with PlanetExpressSlapd(work, pki) as server:
        yield server
