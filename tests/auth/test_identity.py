"""The identity contract: home_name, validation, and the ledger's allocation rules on a real database."""

from __future__ import annotations

import hashlib
import multiprocessing
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hubkit.auth import HubKitIdentity, IdentityError, IdentityLedger, home_name
from hubkit.auth.exceptions import AllocationError, NonceReused, UsernameTakenError
from hubkit.auth.ledger import Admission

HOME = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")


@pytest.mark.parametrize(
    ("key", "slug"),
    [
        ("github:583231", "github-583231"),
        ("lti:https://canvas.example.edu:Ab/..//C", "lti-https-canvas-example-edu-ab-c"),
        ("ldap:" + "x" * 80, "ldap-" + "x" * 35),
        ("cilogon:http://cilogon.org/serverA/users/1234", "cilogon-http-cilogon-org-servera-users-1"),
        ("lti:c:\u00e9\u00e9", "lti-c"),
        ("ldap:a---------------------------------------b", "ldap-a-b"),
    ],
)
def test_home_name_follows_the_documented_algorithm(key: str, slug: str) -> None:
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    assert home_name(key) == f"{slug}-{digest}"
    assert HOME.match(home_name(key))
    assert "/" not in home_name(key)
    assert "." not in home_name(key)


def test_home_name_of_a_key_without_letters_or_digits_is_x() -> None:
    assert home_name(":::").startswith("x-")


def test_identity_round_trips_through_auth_state() -> None:
    identity = HubKitIdentity.create("github:583231", 583231, 583231, {"my-org": 1342004})
    state = {"hubkit": identity.to_auth_state(), "github_user": {"id": 583231}}
    assert HubKitIdentity.from_auth_state(state) == identity
    assert state["hubkit"]["home"] == home_name("github:583231")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "nokeyprefix", "uid": 5000, "gid": 5000}, "provider"),
        ({"key": "x:" + "a" * 300, "uid": 5000, "gid": 5000}, "256"),
        ({"key": "lti:c:\x07bell", "uid": 5000, "gid": 5000}, "control"),
        ({"key": "github:1", "uid": 0, "gid": 5000}, "uid"),
        ({"key": "github:1", "uid": 5000, "gid": 2**31}, "gid"),
        ({"key": "github:1", "uid": True, "gid": 5000}, "uid"),
        ({"key": "github:1", "uid": 5000, "gid": 5000, "posix_groups": {"Bad Name": 5000}}, "group name"),
        ({"key": "github:1", "uid": 5000, "gid": 5000, "posix_groups": {"ok": 10}}, "gid of group"),
    ],
)
def test_invalid_identities_are_refused_with_a_sentence(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        HubKitIdentity.create(**kwargs)  # type: ignore[arg-type]


def test_a_tampered_home_or_unknown_field_is_refused() -> None:
    block = HubKitIdentity.create("github:1", 5000, 5000).to_auth_state()
    with pytest.raises(IdentityError, match="home"):
        HubKitIdentity.from_auth_state({"hubkit": block | {"home": "../etc"}})
    with pytest.raises(IdentityError, match="unknown fields"):
        HubKitIdentity.from_auth_state({"hubkit": block | {"shell": "/bin/sh"}})
    with pytest.raises(IdentityError, match="log in again"):
        HubKitIdentity.from_auth_state({})


def test_allocation_is_stable_across_restarts_and_never_reuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    first = IdentityLedger(url)
    a = first.allocate("user", "lti:c:a", (5000, 5010))
    b = first.allocate("user", "lti:c:b", (5000, 5010))
    assert (a, b) == (5000, 5001)
    first.engine.dispose()
    # A restarted hub (a new engine on the same file) sees the same numbers.
    again = IdentityLedger(url)
    assert again.allocate("user", "lti:c:a", (5000, 5010)) == a
    # Even if an admin deletes the newest row, numbers handed out later never go backwards...
    with again.engine.begin() as conn:
        conn.execute(text("DELETE FROM hubkit_posix_ids WHERE owner = 'lti:c:a'"))
    c = again.allocate("user", "lti:c:c", (5000, 5010))
    assert c == 5002
    # ...and a group in an overlapping range never shares a number with a user.
    assert again.allocate("group", "lti:course", (5000, 5010)) == 5003


def test_an_exhausted_range_says_what_to_do(tmp_path: Path) -> None:
    ledger = IdentityLedger(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    ledger.allocate("user", "k:1", (7000, 7001))
    with pytest.raises(AllocationError, match="widen"):
        ledger.allocate("user", "k:2", (7000, 7001))


def test_a_username_stays_bound_to_its_first_key(tmp_path: Path) -> None:
    ledger = IdentityLedger(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    first = ledger.admit(Admission("lti:lms-a:sam", "sam", (9000, 9100))).uid
    assert first is not None
    assert ledger.admit(Admission("lti:lms-a:sam", "sam", (9000, 9100))).uid == first
    with pytest.raises(UsernameTakenError, match="belongs to someone else"):
        ledger.admit(Admission("lti:lms-b:sam", "sam", (9000, 9100)))
    assert ledger.username_key("sam") == "lti:lms-a:sam"
    # The refused login wrote nothing: no number was used up for lms-b's sam.
    assert ledger.admit(Admission("lti:lms-b:other", "other", (9000, 9100))).uid == first + 1


def test_a_replayed_nonce_writes_nothing(tmp_path: Path) -> None:
    ledger = IdentityLedger(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    nonce = ("lti11:lms-a", "n-1", 600.0)
    assert ledger.admit(Admission("lti:lms-a:1", "one", (9000, 9100), nonce=nonce)).uid == 9000
    with pytest.raises(NonceReused):
        ledger.admit(Admission("lti:lms-a:2", "two", (9000, 9100), nonce=nonce))
    assert ledger.username_key("two") is None
    assert ledger.lookup("user", "lti:lms-a:2") is None


def test_group_gids_come_from_the_same_range_and_stay_stable(tmp_path: Path) -> None:
    ledger = IdentityLedger(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    course = ("group:course:c1:student", "group:course:c1:ta")
    first = ledger.admit(Admission("lti:lms:1", "one", (9000, 9100), groups=course))
    assert first.uid == 9000
    assert first.gids == {course[0]: 9001, course[1]: 9002}
    second = ledger.admit(Admission("lti:lms:2", "two", (9000, 9100), groups=course[:1]))
    assert second.uid == 9003
    assert second.gids == {course[0]: 9001}
    assert ledger.lookup("group", course[1]) == 9002


def _allocate_many(url: str, worker: int, count: int) -> list[int]:
    ledger = IdentityLedger(url)
    return [ledger.allocate("user", f"lti:c:w{worker}-{i}", (100_000, 200_000)) for i in range(count)]


def test_concurrent_replicas_never_hand_out_the_same_number(tmp_path: Path) -> None:
    """Four processes (four hub replicas) allocating at once against one database file."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    IdentityLedger(url)  # create the tables once, as the first hub does
    ctx = multiprocessing.get_context("fork")  # the ledger module is already imported here
    with ctx.Pool(4) as pool:
        results = pool.starmap(_allocate_many, [(url, w, 40) for w in range(4)])
    numbers = [n for chunk in results for n in chunk]
    assert len(numbers) == 160
    assert len(set(numbers)) == 160
    assert sorted(numbers) == list(range(100_000, 100_160))
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hubkit_posix_ids")).scalar() == 160
