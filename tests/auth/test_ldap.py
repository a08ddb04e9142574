"""HubKit's LDAP authenticator against the real slapd: groups, nesting, POSIX identity, failover, refresh."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import ldap3
import pytest
from conftest import password_login as login
from conftest import password_of

from hubkit.auth import home_name
from hubkit_testing.hub import Hub
from hubkit_testing.ldap import SlapdServer


async def test_a_direct_member_logs_in_with_posix_identity(ldap_hub: Hub, ldap_server: SlapdServer) -> None:
    r = await login(ldap_hub, "bob", password_of(ldap_server, "bob"))
    assert r.status_code == 302, r.text
    model = await ldap_hub.api("GET", "/users/bob")
    assert sorted(model["groups"]) == ["ldap:hubkit-users", "ldap:physics"]
    block = model["auth_state"]["hubkit"]
    bob = ldap_server.directory.user("bob")
    assert (block["uid"], block["gid"]) == (bob.uid_number, bob.gid_number)
    assert block["posix_groups"] == {"hubkit-users": 10000}
    assert block["key"].startswith("ldap:")
    assert block["key"] != "ldap:bob"  # the entryUUID, not the login name
    assert block["home"] == home_name(block["key"])
    assert model["admin"] is False


async def test_a_nested_member_is_allowed_and_gets_both_groups(
    ldap_hub: Hub, ldap_server: SlapdServer
) -> None:
    r = await login(ldap_hub, "carol", password_of(ldap_server, "carol"))
    assert r.status_code == 302, r.text
    groups = (await ldap_hub.api("GET", "/users/carol"))["groups"]
    assert {"ldap:physics", "ldap:physics-staff"} <= set(groups)


async def test_the_in_chain_rule_is_used_only_where_the_server_offers_it(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer
) -> None:
    """slapd answers an in-chain filter with success and no entries: HubKit must notice, not strip groups."""
    hub = ldap_hub_factory([ldap_server.url], "c.HubKitLDAPAuthenticator.use_in_chain_rule = True")
    for _ in range(2):  # the server's capabilities are read once, then remembered
        r = await login(hub, "carol", password_of(ldap_server, "carol"))
        assert r.status_code == 302, r.text
    groups = (await hub.api("GET", "/users/carol"))["groups"]
    assert {"ldap:physics", "ldap:physics-staff"} <= set(groups)
    log = hub.log_path.read_text()
    assert log.count("does not offer the in-chain matching rule (not Active Directory)") == 1


async def test_admin_groups_make_admins(ldap_hub: Hub, ldap_server: SlapdServer) -> None:
    r = await login(ldap_hub, "alice", password_of(ldap_server, "alice"))
    assert r.status_code == 302, r.text
    model = await ldap_hub.api("GET", "/users/alice")
    assert model["admin"] is True
    assert model["auth_state"]["hubkit"]["posix_groups"] == {"hubkit-admins": 10001, "hubkit-users": 10000}


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("dave", "dave-gauss-4"),  # a real user outside the allowed groups
        ("bob", "wrong-password"),
        ("bob", ""),  # an empty password must never become an anonymous bind
        ("*", "x"),
        ("bob)(uid=*", "bob-can-we-fix-it-2"),
        ("b*", "bob-can-we-fix-it-2"),
        ("bo\nb", "bob-can-we-fix-it-2"),  # tornado drops NUL and most C0 characters; \n gets through
        ("x" * 300, "x"),
    ],
    ids=[
        "outside-groups",
        "wrong-password",
        "empty-password",
        "star",
        "filter-injection",
        "wildcard",
        "nul",
        "300",
    ],
)
async def test_refused_logins_create_nobody(ldap_hub: Hub, username: str, password: str) -> None:
    before = {u["name"] for u in await ldap_hub.api("GET", "/users")}
    log_offset = len(ldap_hub.log_path.read_text())
    r = await login(ldap_hub, username, password)
    assert r.status_code == 403
    assert "Invalid username or password" in r.text
    assert {u["name"] for u in await ldap_hub.api("GET", "/users")} == before
    new_log = ldap_hub.log_path.read_text()[log_offset:]
    assert repr(username[:80]) in new_log
    assert "LDAP login refused" in new_log or "is in none of the allowed groups" in new_log


async def test_filter_metacharacters_in_a_password_are_just_a_password(
    ldap_server: SlapdServer, ldap_hub: Hub
) -> None:
    # mallory's password contains ")(uid=*": it binds because it is sent verbatim, but she is not allowed.
    r = await login(ldap_hub, "mallory", password_of(ldap_server, "mallory"))
    assert r.status_code == 403
    assert "'mallory' is in none of the allowed groups" in ldap_hub.log_path.read_text()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: an LDAP server that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        sock.close()


async def test_a_hanging_directory_gives_a_clear_error_without_blocking_the_hub(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer, silent_server: int
) -> None:
    hub = ldap_hub_factory([f"ldap://127.0.0.1:{silent_server}"])
    pending = asyncio.ensure_future(login(hub, "bob", password_of(ldap_server, "bob")))
    await asyncio.sleep(0.5)
    # While the login waits for the silent server, the hub keeps answering.
    async with hub.client() as c:
        start = time.monotonic()
        health = await c.get("/hub/health")
        assert health.status_code == 200
        assert time.monotonic() - start < 1.5
    assert not pending.done()
    r = await pending
    assert r.status_code == 503
    assert "The login directory (LDAP) is not answering" in r.text
    await hub.api("GET", "/users/bob", expect=404)
    assert f"ldap://127.0.0.1:{silent_server}" in hub.log_path.read_text()


async def test_refresh_drops_a_user_removed_from_the_allowed_group(
    ldap_hub_factory: Callable[..., Hub], ldap_server: SlapdServer
) -> None:
    d = ldap_server.directory
    group = d.group_dn(f"refresh-{uuid.uuid4().hex[:6]}")
    admin = ldap3.Connection(
        ldap_server.url, ldap_server.admin_dn, ldap_server.admin_password, auto_bind=True
    )
    admin.add(group, ["groupOfNames"], {"member": [d.user_dn("dave")]})
    try:
        extra = f"c.LDAPAuthenticator.allowed_groups = [{group!r}]\nc.Authenticator.auth_refresh_age = 1\n"
        hub = ldap_hub_factory([ldap_server.url], extra)
        async with hub.client() as c:
            await c.get("/hub/login")
            data = {
                "username": "dave",
                "password": password_of(ldap_server, "dave"),
                "_xsrf": c.cookies["_xsrf"],
            }
            assert (await c.post("/hub/login", data=data)).status_code == 302
            assert (await c.get("/hub/home")).status_code == 200
            admin.modify(group, {"member": [(ldap3.MODIFY_REPLACE, [d.user_dn("carol")])]})
            await asyncio.sleep(1.5)
            r = await c.get("/hub/home")
        assert r.status_code == 302
        assert "/hub/login" in r.headers["location"]
        assert "'dave' lost access at refresh" in hub.log_path.read_text()
    finally:
        admin.delete(group)
        admin.unbind()
