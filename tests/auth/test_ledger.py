"""The identity ledger on SQLite and on a real PostgreSQL server: batched logins, replicas, busy databases.

Logins that reach the ledger in the same turn of the hub's event loop share one transaction and one
durable commit; each must still be admitted or refused on its own, and a refused one writes nothing.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from hubkit.auth.exceptions import AllocationError, NonceReused, UsernameTakenError
from hubkit.auth.ledger import Admission, Admitted, IdentityLedger, Outcome

RANGE = (50_000, 60_000)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def login(n: int, nonce: str | None = None, username: str | None = None) -> Admission:
    key = f"lti:lms:{n}"
    return Admission(
        key,
        username or f"user-{n}",
        RANGE,
        nonce=("lti11:lms", nonce or f"nonce-{n}", 600.0),
        groups=("group:course:c1:student",),
    )


def counting_batches(ledger: IdentityLedger) -> list[int]:
    sizes: list[int] = []
    admit_all = ledger._admit_all

    def counted(admissions: list[Admission], engine: Engine | None = None) -> list[Outcome]:
        sizes.append(len(admissions))
        return admit_all(admissions, engine)

    ledger._admit_all = counted  # type: ignore[method-assign]
    return sizes


async def test_logins_arriving_together_share_one_commit_and_are_judged_one_by_one(db_url: str) -> None:
    ledger = IdentityLedger(db_url)
    ledger.admit(login(0, nonce="used-before"))
    batches = counting_batches(ledger)
    fresh = [login(n) for n in range(1, 21)]
    replay_of_earlier = login(21, nonce="used-before")
    twins = [login(22, nonce="twin"), login(23, nonce="twin")]  # the same launch posted twice at once
    name_taken = login(24, username="user-1")  # another key claiming user-1's name
    outcomes = await asyncio.gather(
        *(ledger.aadmit(a) for a in [*fresh, replay_of_earlier, *twins, name_taken]), return_exceptions=True
    )
    assert batches == [len(outcomes)]  # one transaction, one commit

    admitted = outcomes[:20]
    assert all(isinstance(o, Admitted) for o in admitted)
    uids = [o.uid for o in admitted if isinstance(o, Admitted)]
    assert len(set(uids)) == 20
    assert isinstance(outcomes[20], NonceReused)
    assert isinstance(outcomes[21], Admitted)  # the first of the twins wins ...
    assert isinstance(outcomes[22], NonceReused)  # ... the second is a replay
    assert isinstance(outcomes[23], UsernameTakenError)
    # Refused logins wrote nothing: no name bound, no number used up.
    for refused in (replay_of_earlier, twins[1], name_taken):
        assert ledger.lookup("user", refused.key) is None
    assert ledger.username_key("user-21") is None
    assert ledger.username_key("user-1") == "lti:lms:1"
    gids = {o.gids["group:course:c1:student"] for o in outcomes if isinstance(o, Admitted)}
    assert len(gids) == 1  # the course group has one gid for everyone
    ledger.engine.dispose()


async def test_a_busy_sqlite_database_moves_the_batch_to_a_thread_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    ledger = IdentityLedger(f"sqlite:///{path}")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer (say JupyterHub in another replica) holds the lock
    batches = counting_batches(ledger)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(ticker())
    logins = asyncio.gather(*(ledger.aadmit(login(n)) for n in range(5)))
    await asyncio.sleep(0.5)
    assert not logins.done()
    assert ticks >= 20  # the loop was never blocked while the logins waited
    blocker.execute("COMMIT")
    outcomes = await asyncio.wait_for(logins, 30)
    running.cancel()
    assert len({o.uid for o in outcomes}) == 5
    assert batches[0] == 5  # tried once on the loop (busy), then waited for as one batch in a thread
    assert all(size == 5 for size in batches)
    blocker.close()
    ledger.engine.dispose()


def _replica(url: str, worker: int, count: int) -> list[str]:
    """One hub replica: first logins of its own people, and launches that every replica receives."""
    ledger = IdentityLedger(url)
    outcomes = []
    for i in range(count):
        own = Admission(
            f"lti:lms:w{worker}-{i}", f"w{worker}-{i}", RANGE, nonce=("s", f"w{worker}-{i}", 600.0)
        )
        shared = Admission(f"lti:lms:s{i}", f"s{i}", RANGE, nonce=("s", f"shared-{i}", 600.0))
        for admission in (own, shared):
            try:
                outcomes.append(f"{admission.key}={ledger.admit(admission).uid}")
            except NonceReused:
                outcomes.append("replay")
    ledger.engine.dispose()
    return outcomes


def test_replicas_never_share_a_number_and_accept_each_launch_once(db_url: str) -> None:
    IdentityLedger(db_url).engine.dispose()  # tables created once, as the first hub does
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_replica, [(db_url, w, 15) for w in range(4)])
    outcomes = [o for chunk in results for o in chunk]
    admitted = [o for o in outcomes if o != "replay"]
    assert len(admitted) == 4 * 15 + 15  # every own login, and each shared launch exactly once
    assert outcomes.count("replay") == 3 * 15
    numbers = [int(o.split("=")[1]) for o in admitted]
    assert len(set(numbers)) == len(numbers)
    with create_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM hubkit_lti_nonces")).scalar() == 4 * 15 + 15
        assert conn.execute(text("SELECT count(*) FROM hubkit_posix_ids")).scalar() == len(numbers)


async def test_a_failing_batch_refuses_its_logins_with_a_sentence_and_never_hangs(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    ledger = IdentityLedger(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE hubkit_usernames")  # a damaged database: every write fails
    start = time.monotonic()
    outcomes = await asyncio.gather(*(ledger.aadmit(login(n)) for n in range(3)), return_exceptions=True)
    assert time.monotonic() - start < 10
    assert all(isinstance(o, AllocationError) for o in outcomes)
    assert {str(o) for o in outcomes} == {"The hub database is busy or unreachable; try again."}
    ledger.engine.dispose()
