"""A real OpenLDAP ``slapd`` on a random loopback port, seeded from a directory described as data.

Authenticator tests need a directory that behaves like production (binds, ACLs, ``memberOf``), so this
runs Debian's slapd (packages slapd and ldap-utils) from a throwaway ``slapd.conf`` instead of faking LDAP.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pytest

SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
MODULE_DIR = Path("/usr/lib/ldap")
Attributes = dict[str, list[str]]
Entry = tuple[str, Attributes]
SLAPD_CONF = """\
{includes}
modulepath {module_dir}
moduleload back_mdb
{memberof_module}
pidfile {work_dir}/slapd.pid
database mdb
suffix "{base_dn}"
rootdn "{admin_dn}"
rootpw {rootpw}
directory {work_dir}/db
maxsize 67108864
# Password hashes serve binds only; everything else is world-readable, as on most campus directories.
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
{memberof_overlay}
"""
MEMBEROF_OVERLAY = """\
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint true
"""


def ssha(password: str, salt: bytes) -> str:
    """Hash a password the way slapd's ``{SSHA}`` scheme checks it, so no plaintext lands on disk."""
    return "{SSHA}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode()


def _salt(name: str) -> bytes:
    """A salt derived from a name, which keeps rendering the directory a pure function."""
    return hashlib.sha256(f"hubkit-salt:{name}".encode()).digest()[:8]


def escape_rdn(value: str) -> str:
    """Escape an attribute value for use in a DN (RFC 4514), so odd names cannot change a DN's shape."""
    escaped = "".join("\\" + c if c in '\\,+"<>;=' else "\\00" if c == "\0" else c for c in value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    return escaped[:-1] + "\\ " if escaped.endswith(" ") and len(value) > 1 else escaped


@dataclass(frozen=True)
class LDAPUser:
    """A person who is both an ``inetOrgPerson`` and a ``posixAccount``, as JupyterHub sites have them."""

    uid: str
    cn: str
    password: str
    uid_number: int
    gid_number: int = 10000
    login_shell: str = "/bin/bash"

    @property
    def home_directory(self) -> str:
        """The home directory, derived from the uid like on most sites."""
        return f"/home/{self.uid}"


@dataclass(frozen=True)
class PosixGroup:
    """An RFC 2307 group: members are listed by uid in ``memberUid``."""

    cn: str
    gid_number: int
    member_uids: tuple[str, ...]


@dataclass(frozen=True)
class NamedGroup:
    """A ``groupOfNames``: members are DNs of users (given by uid) and of other named groups (by cn)."""

    cn: str
    member_uids: tuple[str, ...] = ()
    subgroups: tuple[str, ...] = ()


DEFAULT_USERS = (
    LDAPUser("alice", "Alice Archer", "alice-wonderland-1", 10001),
    LDAPUser("bob", "Bob Builder", "bob-can-we-fix-it-2", 10002),
    LDAPUser("carol", "Carol Curie", "carol-radium-3", 10003),
    LDAPUser("dave", "Dave Dalton", "dave-gauss-4", 10004, login_shell="/bin/zsh"),
    # Filter metacharacters in the cn and password, for injection tests: escaping must keep them literal.
    LDAPUser("mallory", r"Mallory (ops) *\ admin", "mallory-)(uid=*-5", 10005),
)
DEFAULT_POSIX_GROUPS = (
    PosixGroup("hubkit-users", 10000, ("alice", "bob", "carol", "dave", "mallory")),
    PosixGroup("hubkit-admins", 10001, ("alice",)),
)
DEFAULT_NAMED_GROUPS = (
    NamedGroup("physics-staff", member_uids=("carol",)),
    NamedGroup("physics", member_uids=("bob",), subgroups=("physics-staff",)),
    NamedGroup("chemistry", member_uids=("alice", "dave")),
)


@dataclass(frozen=True)
class LDAPDirectory:
    """The whole test directory as data: tests read expectations from here rather than from literals."""

    base_dn: str = "dc=hubkit,dc=test"
    admin_password: str = "hubkit-admin-secret"
    users: tuple[LDAPUser, ...] = DEFAULT_USERS
    posix_groups: tuple[PosixGroup, ...] = DEFAULT_POSIX_GROUPS
    named_groups: tuple[NamedGroup, ...] = DEFAULT_NAMED_GROUPS

    @property
    def admin_dn(self) -> str:
        """The rootdn, which slapd lets bind without any entry in the tree."""
        return f"cn=admin,{self.base_dn}"

    @property
    def people_dn(self) -> str:
        return f"ou=people,{self.base_dn}"

    @property
    def groups_dn(self) -> str:
        return f"ou=groups,{self.base_dn}"

    def user_dn(self, uid: str) -> str:
        return f"uid={escape_rdn(uid)},{self.people_dn}"

    def group_dn(self, cn: str) -> str:
        return f"cn={escape_rdn(cn)},{self.groups_dn}"

    def user(self, uid: str) -> LDAPUser:
        """Look up a user by uid, failing loudly on a typo in a test."""
        found = [user for user in self.users if user.uid == uid]
        if not found:
            raise KeyError(f"The test directory has no user with uid {uid!r}.")
        return found[0]


def _user_attributes(user: LDAPUser) -> Attributes:
    """The attributes of one user entry, the password stored as ``{SSHA}``."""
    return {
        "objectClass": ["inetOrgPerson", "posixAccount"],
        "uid": [user.uid],
        "cn": [user.cn],
        "sn": [user.cn.split()[-1]],
        "mail": [f"{user.uid}@hubkit.test"],
        "uidNumber": [str(user.uid_number)],
        "gidNumber": [str(user.gid_number)],
        "homeDirectory": [user.home_directory],
        "loginShell": [user.login_shell],
        "userPassword": [ssha(user.password, _salt(user.uid))],
    }


def _named_groups_in_order(groups: tuple[NamedGroup, ...]) -> list[NamedGroup]:
    """Subgroups before the groups containing them, so the memberof overlay records both levels."""
    by_cn, ordered = {group.cn: group for group in groups}, list[NamedGroup]()

    def visit(group: NamedGroup) -> None:
        for sub in group.subgroups:
            visit(by_cn[sub])
        if group not in ordered:
            ordered.append(group)

    for group in groups:
        visit(group)
    return ordered


def base_entries(directory: LDAPDirectory) -> list[Entry]:
    """Entries slapadd loads offline: the suffix, the two OUs, the users and the posix groups."""
    dc = directory.base_dn.split(",")[0].split("=", 1)[1]
    entries: list[Entry] = [
        (directory.base_dn, {"objectClass": ["dcObject", "organization"], "dc": [dc], "o": ["HubKit"]}),
        (directory.people_dn, {"objectClass": ["organizationalUnit"], "ou": ["people"]}),
        (directory.groups_dn, {"objectClass": ["organizationalUnit"], "ou": ["groups"]}),
    ]
    entries += [(directory.user_dn(user.uid), _user_attributes(user)) for user in directory.users]
    for group in directory.posix_groups:
        attrs = {"objectClass": ["posixGroup"], "cn": [group.cn], "gidNumber": [str(group.gid_number)]}
        entries.append((directory.group_dn(group.cn), attrs | {"memberUid": list(group.member_uids)}))
    return entries


def named_group_entries(directory: LDAPDirectory) -> list[Entry]:
    """The ``groupOfNames`` entries, added over LDAP after start because slapadd bypasses overlays."""
    entries: list[Entry] = []
    for group in _named_groups_in_order(directory.named_groups):
        members = [directory.user_dn(uid) for uid in group.member_uids]
        members += [directory.group_dn(cn) for cn in group.subgroups]
        attrs = {"objectClass": ["groupOfNames"], "cn": [group.cn], "member": members}
        entries.append((directory.group_dn(group.cn), attrs))
    return entries


def _ldif_line(name: str, value: str) -> str:
    """One ``attr: value`` line, base64-encoded when RFC 2849 says the value is not a safe string."""
    unsafe = not value.isascii() or value[:1] in (" ", ":", "<") or value.endswith(" ")
    if unsafe or any(c in value for c in "\0\r\n"):
        return f"{name}:: {base64.b64encode(value.encode()).decode()}"
    return f"{name}: {value}"


def entries_to_ldif(entries: list[Entry]) -> str:
    """Render entries as LDIF text, one blank-line-separated block per entry."""
    lines = [
        [_ldif_line("dn", dn)] + [_ldif_line(k, v) for k, vs in a.items() for v in vs] for dn, a in entries
    ]
    return "\n\n".join("\n".join(block) for block in lines) + "\n"


def render_ldif(directory: LDAPDirectory) -> str:
    """The whole directory as LDIF (a pure function: the same directory always gives the same text)."""
    return entries_to_ldif(base_entries(directory) + named_group_entries(directory))


def slapd_conf(directory: LDAPDirectory, work_dir: Path, memberof: bool) -> str:
    """A minimal ``slapd.conf``: one mdb database, passwords usable only for binding, the rest public."""
    includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
    return SLAPD_CONF.format(
        includes=includes,
        module_dir=MODULE_DIR,
        work_dir=work_dir,
        base_dn=directory.base_dn,
        admin_dn=directory.admin_dn,
        rootpw=ssha(directory.admin_password, _salt("admin")),
        memberof_module="moduleload memberof" if memberof else "",
        memberof_overlay=MEMBEROF_OVERLAY if memberof else "",
    )


def _free_port() -> int:
    """Ask the kernel for an unused loopback port (slapd may still lose a race for it; start() retries)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class SlapdServer:
    """One slapd process serving a :class:`LDAPDirectory`, with a fresh database on every ``start()``."""

    host = "127.0.0.1"

    def __init__(self, work_dir: Path, directory: LDAPDirectory | None = None, timeout: float = 10.0) -> None:
        self.work_dir, self.timeout = work_dir, timeout
        self.directory = directory or LDAPDirectory()
        self.base_dn, self.admin_dn = self.directory.base_dn, self.directory.admin_dn
        self.admin_password = self.directory.admin_password
        self.memberof_enabled = (MODULE_DIR / "memberof.la").exists()
        self.log_path = work_dir / "slapd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The ``ldap://`` URL clients connect to (the port is 0 until started)."""
        return f"ldap://{self.host}:{self.port}"

    def start(self) -> None:
        """Load the directory offline, launch slapd, wait until the admin can bind, then add named groups.

        Any failure stops slapd again, so a broken start never leaves a process behind.
        """
        if self.process is not None:
            raise RuntimeError("This slapd server is already running; call stop() before starting it again.")
        try:
            self._prepare_database()
            self._launch()
            if online := named_group_entries(self.directory):
                self._ldap_tool("ldapadd", entries_to_ldif(online))
        except BaseException:
            self.stop()
            raise

    def _launch(self) -> None:
        """Launch slapd on a free port, retrying only when it lost the race for that port."""
        for _attempt in range(3):
            if self._launch_and_wait(_free_port()):
                return
            if "errno=98" not in self.log_path.read_text():  # anything but "address in use" is fatal
                break
        self.stop()
        log = self.log_path.read_text()
        raise RuntimeError(
            f"slapd exited or did not accept an admin bind within {self.timeout} s; its log follows.\n{log}"
        )

    def _prepare_database(self) -> None:
        """Write config and LDIF into the work dir and slapadd the offline entries into an empty database."""
        shutil.rmtree(self.work_dir / "db", ignore_errors=True)
        (self.work_dir / "db").mkdir(parents=True)
        conf = self.work_dir / "slapd.conf"
        conf.write_text(self.global_conf() + slapd_conf(self.directory, self.work_dir, self.memberof_enabled))
        offline = self.offline_entries()
        (self.work_dir / "directory.ldif").write_text(
            entries_to_ldif(offline + named_group_entries(self.directory))
        )
        (self.work_dir / "base.ldif").write_text(entries_to_ldif(offline))
        command = ["slapadd", "-q", "-f", str(conf), "-l", str(self.work_dir / "base.ldif")]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"slapadd could not load the test directory: {result.stderr.strip()}")

    def offline_entries(self) -> list[Entry]:
        """The entries slapadd loads before slapd starts (subclasses serve other directories)."""
        return base_entries(self.directory)

    def global_conf(self) -> str:
        """Global ``slapd.conf`` directives put before the generated ones (TLS files, for instance)."""
        return ""

    def listen_urls(self) -> list[str]:
        """What slapd listens on (``-h``); :attr:`url` must be one of them (the admin bind polls it)."""
        return [f"{self.url}/"]

    def _launch_and_wait(self, port: int) -> bool:
        """Run slapd in the foreground (``-d stats`` logs to slapd.log) and poll until the admin binds.

        Returns False as soon as slapd exits, e.g. because it lost the race for the port.
        """
        self.port, deadline = port, time.monotonic() + self.timeout
        command = ["slapd", "-f", str(self.work_dir / "slapd.conf"), "-h", " ".join(self.listen_urls())]
        command += ["-d", "stats"]
        with self.log_path.open("wb") as log:
            process = self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.process = None
                return False
            if port_open(self.host, port) and self._ldap_tool("ldapwhoami", check=False):
                return True
            time.sleep(0.01)
        return False

    def _ldap_tool(self, tool: str, ldif: str = "", check: bool = True) -> bool:
        """Run an ldap-utils client bound as the admin; with check, a failure raises with its message."""
        command = [
            tool,
            "-x",
            "-o",
            "nettimeout=5",
            "-H",
            self.url,
            "-D",
            self.admin_dn,
            "-w",
            self.admin_password,
        ]
        result = subprocess.run(command, input=ldif, capture_output=True, text=True, timeout=30, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{tool} against the test slapd failed: {result.stderr.strip()}")
        return result.returncode == 0

    def stop(self) -> None:
        """Terminate slapd, reap it, and check that nothing listens on its port any more."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if port_open(self.host, self.port):
            raise RuntimeError(
                f"Port {self.port} still accepts connections after slapd stopped; find its owner."
            )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    """A running slapd with the default test directory, shared by the whole session."""
    with SlapdServer(tmp_path_factory.mktemp("slapd")) as server:
        yield server
