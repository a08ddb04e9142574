"""HubKit's own tables in the hub database: allocated POSIX ids, username bindings, LTI nonces.

The hub's ``db_url`` (SQLite by default, PostgreSQL supported) holds three tables next to JupyterHub's:
rows are only ever added (ids are never reused), and every uniqueness rule is a database constraint, so
several hub replicas or many simultaneous first logins cannot hand out the same number twice.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from .exceptions import AllocationError, NonceReused, UsernameTakenError

T = TypeVar("T")
metadata = MetaData()

posix_ids = Table(
    "hubkit_posix_ids",
    metadata,
    Column("kind", String(16), primary_key=True),  # "user" or "group"
    Column("owner", String(320), primary_key=True),  # identity key, or provider group key
    Column("number", Integer, nullable=False, unique=True),
    Column("created", Float, nullable=False),
)
usernames = Table(
    "hubkit_usernames",
    metadata,
    Column("username", String(255), primary_key=True),
    Column("key", String(320), nullable=False),
    Column("created", Float, nullable=False),
)
nonces = Table(
    "hubkit_lti_nonces",
    metadata,
    Column("scope", String(320), primary_key=True),  # consumer key (LTI 1.1) or issuer (LTI 1.3)
    Column("nonce", String(255), primary_key=True),
    Column("seen", Float, nullable=False, index=True),
)

_RETRIES = 50

# The statements of a login, built once: a launch storm then pays only for execution, not for
# constructing and cache-keying the same SQL expressions on the hub's event loop every time.
_INSERT_NONCE = insert(nonces).values(
    scope=bindparam("scope"), nonce=bindparam("nonce"), seen=bindparam("now")
)
_PURGE_NONCES = delete(nonces).where(nonces.c.seen < bindparam("before"))
_BOUND_KEY = select(usernames.c.key).where(usernames.c.username == bindparam("username"))
_BIND_USERNAME = insert(usernames).values(
    username=bindparam("username"), key=bindparam("key"), created=bindparam("now")
)
_NUMBER_OF = select(posix_ids.c.number).where(
    posix_ids.c.kind == bindparam("kind"), posix_ids.c.owner == bindparam("owner")
)
_TOP_NUMBER = select(func.max(posix_ids.c.number)).where(
    posix_ids.c.number >= bindparam("lo"), posix_ids.c.number < bindparam("hi")
)
_NONCE_SEEN = select(nonces.c.seen).where(
    nonces.c.scope == bindparam("scope"), nonces.c.nonce == bindparam("nonce")
)
_INSERT_NUMBER = insert(posix_ids).values(
    kind=bindparam("kind"), owner=bindparam("owner"), number=bindparam("number"), created=bindparam("now")
)


@dataclass(frozen=True)
class Admission:
    """Everything a first (or returning) login writes, done in one transaction.

    ``nonce`` is ``(scope, value, keep_seconds)`` for launches that carry one; ``username`` is bound to
    ``key`` unless None; a uid is allocated from ``id_range`` unless ``allocate`` is False; each of
    ``groups`` (group owner keys, e.g. ``group:course:<context>:student``) gets a gid from the same range,
    so a group's gid never equals a user's own gid.
    """

    key: str
    username: str | None
    id_range: tuple[int, int]
    allocate: bool = True
    nonce: tuple[str, str, float] | None = None
    groups: tuple[str, ...] = ()


class Admitted(NamedTuple):
    """What a login's transaction returns: the uid (None unless allocated) and each group's gid."""

    uid: int | None
    gids: dict[str, int]


class IdentityLedger:
    """Synchronous operations on HubKit's tables, plus ``a*`` coroutines that run them in a thread."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.sqlite = db_url.startswith("sqlite")
        connect_args = {"timeout": 30, "check_same_thread": False} if self.sqlite else {}
        self.engine: Engine = create_engine(db_url, connect_args=connect_args, future=True)
        # A second engine for attempts made on the hub's event loop: it never waits for SQLite's lock
        # (timeout 0), so the loop is never blocked behind another writer; busy means "use a thread".
        self.inline_engine: Engine | None = None
        if self.sqlite:
            _immediate_transactions(self.engine)
            inline_args = {"timeout": 0.0, "check_same_thread": False}
            self.inline_engine = create_engine(db_url, connect_args=inline_args, future=True)
            _immediate_transactions(self.inline_engine)
        # SQLite allows one writer: serialise this process's writers instead of spinning on "locked".
        self._lock = threading.Lock() if self.sqlite else None
        self._last_purge = 0.0
        metadata.create_all(self.engine)

    def _locked(self, fn: Callable[[], T]) -> T:
        for attempt in range(_RETRIES):
            try:
                if self._lock is None:
                    return fn()
                with self._lock:
                    return fn()
            except OperationalError as e:  # another process holds SQLite's write lock
                if "locked" not in str(e) or attempt == _RETRIES - 1:
                    raise AllocationError("The hub database is busy or unreachable; try again.") from e
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- POSIX ids --------------------------------------------------------------------------------

    def lookup(self, kind: str, owner: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(_NUMBER_OF, {"kind": kind, "owner": owner}).first()
        return None if row is None else int(row[0])

    def allocate(self, kind: str, owner: str, number_range: tuple[int, int]) -> int:
        """The number of ``owner``: the existing one, or the next never-used number in ``[lo, hi)``."""
        lo, hi = number_range
        for _ in range(_RETRIES):
            existing = self.lookup(kind, owner)
            if existing is not None:
                return existing
            try:
                return self._locked(lambda: self._insert_next(kind, owner, lo, hi))
            except IntegrityError:
                continue  # a concurrent writer took the number or the owner: look again
        raise AllocationError(f"Could not allocate a {kind} id for {owner!r} after {_RETRIES} attempts.")

    def _insert_next(self, kind: str, owner: str, lo: int, hi: int) -> int:
        with self.engine.begin() as conn:
            return self._insert_number(conn, kind, owner, (lo, hi))

    @staticmethod
    def _insert_number(conn: Connection, kind: str, owner: str, number_range: tuple[int, int]) -> int:
        lo, hi = number_range
        top = conn.execute(_TOP_NUMBER, {"lo": lo, "hi": hi}).scalar()
        number = lo if top is None else int(top) + 1
        if number >= hi:
            raise AllocationError(
                f"The id range {lo}-{hi - 1} is used up; widen the authenticator's id range."
            )
        conn.execute(_INSERT_NUMBER, {"kind": kind, "owner": owner, "number": number, "now": time.time()})
        return number

    # --- one transaction per login -------------------------------------------------------------

    def admit(self, admission: Admission) -> Admitted:
        """Record the nonce, bind the username, allocate or read the uid and the groups' gids.

        Raises NonceReused for a replay and UsernameTakenError for a name bound to another key; in
        both cases nothing is written.
        """
        for _ in range(_RETRIES):
            try:
                return self._locked(lambda: self._admit_once(admission))
            except IntegrityError:
                if admission.nonce is not None and self._nonce_seen(*admission.nonce[:2]):
                    raise NonceReused("This launch was already used.") from None
                continue  # a concurrent replica took the number: try again
        raise AllocationError(f"Could not record the login of {admission.key!r}; try again.")

    def _admit_once(self, a: Admission, engine: Engine | None = None) -> Admitted:
        now = time.time()
        with (engine or self.engine).begin() as conn:
            if a.nonce is not None:
                scope, value, keep = a.nonce
                if now - self._last_purge > 60:
                    conn.execute(_PURGE_NONCES, {"before": now - keep})
                    self._last_purge = now
                conn.execute(_INSERT_NONCE, {"scope": scope, "nonce": value, "now": now})
            if a.username is not None:
                bound = conn.execute(_BOUND_KEY, {"username": a.username}).first()
                if bound is None:
                    conn.execute(_BIND_USERNAME, {"username": a.username, "key": a.key, "now": now})
                elif bound[0] != a.key:
                    raise UsernameTakenError(
                        f"The account name {a.username!r} already belongs to someone else; "
                        "ask the hub's admins to link or rename accounts."
                    )
            uid = self._number(conn, "user", a.key, a.id_range) if a.allocate else None
            gids = {owner: self._number(conn, "group", owner, a.id_range) for owner in a.groups}
            return Admitted(uid, gids)

    def _number(self, conn: Connection, kind: str, owner: str, number_range: tuple[int, int]) -> int:
        found = conn.execute(_NUMBER_OF, {"kind": kind, "owner": owner}).first()
        if found is not None:
            return int(found[0])
        return self._insert_number(conn, kind, owner, number_range)

    def _nonce_seen(self, scope: str, value: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(_NONCE_SEEN, {"scope": scope, "nonce": value})
            return row.first() is not None

    async def aadmit(self, admission: Admission) -> Admitted:
        """``admit`` without blocking the event loop.

        SQLite: first one attempt right here on the loop, like JupyterHub's own (short) writes, but
        without ever waiting: if this process's or another's writer holds the lock, the attempt
        fails at once and the admission moves to a thread that may wait. Writing from a thread while
        JupyterHub writes on the loop would make the loop sleep in SQLite's busy handler instead.
        """
        if self.inline_engine is not None and self._lock is not None and self._lock.acquire(blocking=False):
            try:
                return self._admit_once(admission, self.inline_engine)
            except OperationalError as e:
                if "locked" not in str(e):
                    raise AllocationError("The hub database is busy or unreachable; try again.") from e
            except IntegrityError:
                pass  # a replay or a concurrent replica: the thread path sorts out which
            finally:
                self._lock.release()
        return await asyncio.to_thread(self.admit, admission)

    # --- usernames ---------------------------------------------------------------------------------

    def username_key(self, username: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(_BOUND_KEY, {"username": username}).first()
        return None if row is None else str(row[0])


def _immediate_transactions(engine: Engine) -> None:
    """SQLite: take the write lock when a transaction begins (``BEGIN IMMEDIATE``).

    pysqlite's default defers locking to the first write, so two replicas that both read and then
    write deadlock and one gets "database is locked" at once; taking the lock up front makes the
    second simply wait (``timeout``) for the first to commit.
    """

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


_ledgers: dict[str, IdentityLedger] = {}
_ledgers_lock = threading.Lock()


def ledger_for(db_url: str) -> IdentityLedger:
    """One ledger (engine) per database URL and process, shared by composed authenticators."""
    with _ledgers_lock:
        if db_url not in _ledgers:
            _ledgers[db_url] = IdentityLedger(db_url)
        return _ledgers[db_url]
