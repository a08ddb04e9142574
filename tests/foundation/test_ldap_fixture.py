"""The slapd fixture serves the directory it describes: binds, posix data, nested groups, memberOf."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.utils.conv import escape_filter_chars

from hubkit_testing.ldap import DEFAULT_USERS, LDAPDirectory, SlapdServer, port_open, render_ldif

UIDS = [user.uid for user in DEFAULT_USERS]


def connect(server: SlapdServer, dn: str | None = None, password: str | None = None) -> ldap3.Connection:
    """An unbound connection to the test server (anonymous unless a DN is given)."""
    endpoint = ldap3.Server(server.host, port=server.port, get_info=ldap3.NONE, connect_timeout=5)
    return ldap3.Connection(endpoint, dn, password, receive_timeout=5)


def results(conn: ldap3.Connection) -> list[dict[str, Any]]:
    """The entries (not referrals) of the connection's last search."""
    return [entry for entry in conn.response or [] if entry["type"] == "searchResEntry"]


def add(conn: ldap3.Connection, dn: str, attributes: dict[str, str]) -> bool:
    """Add an entry (a typed wrapper: ldap3's stubs leave ``add`` unannotated)."""
    return bool(conn.add(dn, attributes=attributes))  # type: ignore[no-untyped-call]


def search(server: SlapdServer, ldap_filter: str, attributes: list[str]) -> dict[str, dict[str, Any]]:
    """Anonymous subtree search under the base DN, as {dn: attributes}."""
    with connect(server) as conn:
        conn.search(server.base_dn, ldap_filter, attributes=attributes)
        return {entry["dn"]: dict(entry["attributes"]) for entry in results(conn)}


def members(server: SlapdServer, group_dn: str) -> list[str]:
    """The ``member`` DNs of one groupOfNames entry."""
    with connect(server) as conn:
        assert conn.search(group_dn, "(objectClass=groupOfNames)", ldap3.BASE, attributes=["member"])
        return list(results(conn)[0]["attributes"]["member"])


def is_named_group(server: SlapdServer, dn: str) -> bool:
    """Whether an entry is a groupOfNames, i.e. a member DN that nests a further group."""
    with connect(server) as conn:
        return bool(conn.search(dn, "(objectClass=groupOfNames)", ldap3.BASE, attributes=["cn"]))


def memberof(server: SlapdServer, dn: str) -> set[str]:
    """The ``memberOf`` values the overlay maintains on an entry (an operational attribute: ask for it)."""
    with connect(server) as conn:
        assert conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
        return set(results(conn)[0]["attributes"].get("memberOf", []))


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[SlapdServer]:
    """A private server for tests that change data or stop it."""
    with SlapdServer(tmp_path) as server:
        yield server


@pytest.mark.parametrize("uid", UIDS)
def test_each_user_binds_with_their_password(ldap_server: SlapdServer, uid: str) -> None:
    dn = ldap_server.directory.user_dn(uid)
    with connect(ldap_server, dn, ldap_server.directory.user(uid).password) as conn:
        assert conn.bound
        assert conn.extend.standard.who_am_i() == f"dn:{dn}"


@pytest.mark.parametrize("uid", UIDS)
def test_wrong_password_is_rejected(ldap_server: SlapdServer, uid: str) -> None:
    conn = connect(
        ldap_server, ldap_server.directory.user_dn(uid), ldap_server.directory.user(uid).password + "x"
    )
    assert not conn.bind()
    assert conn.result["description"] == "invalidCredentials"


def test_password_hashes_are_hidden_from_anonymous_readers(ldap_server: SlapdServer) -> None:
    entries = search(ldap_server, "(objectClass=posixAccount)", ["uid", "userPassword"])
    assert len(entries) == len(UIDS)
    assert [attrs["userPassword"] for attrs in entries.values()] == [[]] * len(UIDS)
    with connect(ldap_server, ldap_server.admin_dn, ldap_server.admin_password) as admin:
        admin.search(ldap_server.directory.user_dn("alice"), "(objectClass=*)", attributes=["userPassword"])
        assert results(admin)[0]["attributes"]["userPassword"][0].startswith("{SSHA}")


@pytest.mark.parametrize("uid", UIDS)
def test_posix_account_attributes_are_searchable(ldap_server: SlapdServer, uid: str) -> None:
    user = ldap_server.directory.user(uid)
    attrs = ["uid", "gidNumber", "homeDirectory", "loginShell"]
    found = search(ldap_server, f"(&(objectClass=posixAccount)(uidNumber={user.uid_number}))", attrs)
    assert list(found) == [ldap_server.directory.user_dn(uid)]
    entry = found[ldap_server.directory.user_dn(uid)]
    assert (entry["uid"], entry["gidNumber"]) == ([uid], [str(user.gid_number)])
    assert (entry["homeDirectory"], entry["loginShell"]) == ([f"/home/{uid}"], [user.login_shell])


def test_posix_groups_list_members_by_uid(ldap_server: SlapdServer) -> None:
    found = search(ldap_server, "(&(objectClass=posixGroup)(memberUid=alice))", ["cn", "gidNumber"])
    assert {attrs["cn"][0]: attrs["gidNumber"] for attrs in found.values()} == {
        "hubkit-users": ["10000"],
        "hubkit-admins": ["10001"],
    }
    assert search(ldap_server, "(&(objectClass=posixGroup)(memberUid=bob))", ["cn"]) == {
        ldap_server.directory.group_dn("hubkit-users"): {"cn": ["hubkit-users"]}
    }


def test_carol_is_in_physics_only_through_the_nested_group(ldap_server: SlapdServer) -> None:
    directory = ldap_server.directory
    carol, physics = directory.user_dn("carol"), directory.group_dn("physics")
    assert carol not in members(ldap_server, physics)
    seen: set[str] = set()
    pending = [physics]
    while pending:
        for member in members(ldap_server, pending.pop()):
            if member not in seen:
                seen.add(member)
                pending += [member] if is_named_group(ldap_server, member) else []
    assert {carol, directory.user_dn("bob"), directory.group_dn("physics-staff")} == seen


def test_memberof_is_maintained_by_the_overlay(ldap_server: SlapdServer) -> None:
    directory = ldap_server.directory
    assert ldap_server.memberof_enabled, "Debian's slapd ships the memberof module; it should be loaded."
    assert memberof(ldap_server, directory.user_dn("carol")) == {directory.group_dn("physics-staff")}
    assert memberof(ldap_server, directory.group_dn("physics-staff")) == {directory.group_dn("physics")}
    assert memberof(ldap_server, directory.user_dn("alice")) == {directory.group_dn("chemistry")}
    assert memberof(ldap_server, directory.user_dn("mallory")) == set()


def test_filter_metacharacters_in_a_name_match_only_when_escaped(ldap_server: SlapdServer) -> None:
    mallory = ldap_server.directory.user("mallory")
    assert set("()*\\") <= set(mallory.cn)
    escaped = search(ldap_server, f"(cn={escape_filter_chars(mallory.cn)})", ["uid"])
    assert [attrs["uid"] for attrs in escaped.values()] == [["mallory"]]


def test_rendered_ldif_is_deterministic_and_holds_no_plaintext_password() -> None:
    ldif = render_ldif(LDAPDirectory())
    assert ldif == render_ldif(LDAPDirectory())
    assert ldif.count("userPassword: {SSHA}") == len(UIDS)
    assert not [user.uid for user in DEFAULT_USERS if user.password in ldif]


def test_runtime_group_changes_update_memberof(fresh_server: SlapdServer) -> None:
    directory = fresh_server.directory
    dave, group = directory.user_dn("dave"), directory.group_dn("biology")
    with connect(fresh_server, fresh_server.admin_dn, fresh_server.admin_password) as admin:
        assert add(admin, group, {"objectClass": "groupOfNames", "cn": "biology", "member": dave})
        assert memberof(fresh_server, dave) == {directory.group_dn("chemistry"), group}
        assert admin.delete(group)  # type: ignore[no-untyped-call]
    assert memberof(fresh_server, dave) == {directory.group_dn("chemistry")}


def test_stop_leaves_no_process_and_no_listener(fresh_server: SlapdServer) -> None:
    process = fresh_server.process
    assert process is not None
    pid, port = process.pid, fresh_server.port
    assert port_open(fresh_server.host, port)
    fresh_server.stop()
    assert fresh_server.process is None
    assert not port_open(fresh_server.host, port)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already reaped: no zombie left behind
    assert not Path(f"/proc/{pid}").exists()


def test_restart_serves_a_fresh_database(fresh_server: SlapdServer) -> None:
    dn = fresh_server.directory.group_dn("transient")
    with connect(fresh_server, fresh_server.admin_dn, fresh_server.admin_password) as admin:
        assert add(admin, dn, {"objectClass": "posixGroup", "cn": "transient", "gidNumber": "20000"})
    fresh_server.stop()
    fresh_server.start()
    assert search(fresh_server, "(cn=transient)", ["cn"]) == {}
    assert len(search(fresh_server, "(objectClass=posixAccount)", ["uid"])) == len(UIDS)


def test_a_server_that_never_gets_ready_fails_with_its_log(tmp_path: Path) -> None:
    server = SlapdServer(tmp_path, timeout=0)
    with pytest.raises(
        RuntimeError, match=r"slapd exited or did not accept an admin bind within 0 s; its log follows"
    ):
        server.start()
    assert server.process is None
    assert not port_open(server.host, server.port)
