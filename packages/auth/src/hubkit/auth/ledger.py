"""HubKit's own tables in the hub database: allocated POSIX ids, username bindings, LTI nonces.

The hub's ``db_url`` (SQLite by default, PostgreSQL supported) holds three tables next to JupyterHub's:
rows are only ever added (ids are never reused), and every uniqueness rule is a database constraint, so
several hub replicas or many simultaneous first logins cannot hand out the same number twice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

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
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

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

log = logging.getLogger(__name__)
_RETRIES = 50
_BUSY = "The hub database is busy or unreachable; try again."

# The statements of a login, built once and compiled once per database dialect; they run on the driver's
# own cursor. A first login runs about eight short statements on the hub's event loop, and SQLAlchemy's
# per-execution bookkeeping (connection, transaction and result objects) would cost twice what the
# database does.
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


class _Compiled(NamedTuple):
    sql: str
    order: tuple[str, ...] | None  # bind names in placeholder order (positional drivers), else None


class _Cursor:
    """One transaction's DBAPI cursor running prebuilt statements; driver errors become SQLAlchemy's."""

    def __init__(self, cursor: Any, dialect: Dialect, compiled: dict[ClauseElement, _Compiled]) -> None:
        self._cursor, self._dialect, self._compiled = cursor, dialect, compiled

    def execute(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        c = self._compiled.get(statement)
        if c is None:
            c = self._compiled[statement] = _compile(statement, self._dialect)
        args = tuple(params[name] for name in c.order) if c.order is not None else dict(params)
        with _driver_errors(self._dialect, c.sql, args):
            self._cursor.execute(c.sql, args)
        return self._cursor

    def first(self, statement: ClauseElement, params: Mapping[str, Any]) -> Any:
        return self.execute(statement, params).fetchone()

    def sql(self, text: str) -> None:
        """A fixed statement without parameters (savepoints)."""
        with _driver_errors(self._dialect, text, ()):
            self._cursor.execute(text)


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    done = cast(SQLCompiler, statement.compile(dialect=dialect))
    return _Compiled(str(done), tuple(done.positiontup or ()) if done.positional else None)


@contextmanager
def _driver_errors(dialect: Dialect, sql: str, params: Any) -> Iterator[None]:
    dbapi = dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as e:
        raise DBAPIError.instance(sql, params, e, dbapi.Error, dialect=dialect) from e


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


Outcome = Admitted | Exception  # a login's result, or the error refusing it


def _settle(batch: list[tuple[Admission, asyncio.Future[Admitted]]], outcomes: list[Any]) -> None:
    for (_admission, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # the waiting request went away
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class IdentityLedger:
    """Synchronous operations on HubKit's tables, plus ``aadmit`` for logins on the hub's event loop."""

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
        self._compiled: dict[ClauseElement, _Compiled] = {}
        self._where = self.engine.url.render_as_string(hide_password=True)
        self._queue: list[tuple[Admission, asyncio.Future[Admitted]]] = []  # logins awaiting a batch
        self._threads: set[asyncio.Future[list[Outcome]]] = set()  # batches running in threads
        metadata.create_all(self.engine)

    @contextmanager
    def _transaction(self, engine: Engine | None = None) -> Iterator[_Cursor]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``) on a pooled driver connection."""
        engine = engine or self.engine
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            if self.sqlite:
                with _driver_errors(engine.dialect, "BEGIN IMMEDIATE", ()):
                    cursor.execute("BEGIN IMMEDIATE")
            try:
                yield _Cursor(cursor, engine.dialect, self._compiled)
            except BaseException:
                conn.rollback()
                raise
            with _driver_errors(engine.dialect, "COMMIT", ()):
                conn.commit()
        finally:
            conn.close()

    @contextmanager
    def _reading(self) -> Iterator[_Cursor]:
        conn = self.engine.raw_connection()
        try:
            yield _Cursor(conn.cursor(), self.engine.dialect, self._compiled)
            conn.rollback()
        finally:
            conn.close()

    def _locked(self, fn: Callable[[], T]) -> T:
        for attempt in range(_RETRIES):
            try:
                if self._lock is None:
                    return fn()
                with self._lock:
                    return fn()
            except OperationalError as e:  # another process holds SQLite's write lock
                if "locked" not in str(e) or attempt == _RETRIES - 1:
                    raise AllocationError(_BUSY) from e
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    # --- POSIX ids --------------------------------------------------------------------------------

    def lookup(self, kind: str, owner: str) -> int | None:
        with self._reading() as cur:
            row = cur.first(_NUMBER_OF, {"kind": kind, "owner": owner})
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
        with self._transaction() as cur:
            return self._insert_number(cur, kind, owner, (lo, hi))

    @staticmethod
    def _insert_number(cur: _Cursor, kind: str, owner: str, number_range: tuple[int, int]) -> int:
        lo, hi = number_range
        top = cur.first(_TOP_NUMBER, {"lo": lo, "hi": hi})[0]
        number = lo if top is None else int(top) + 1
        if number >= hi:
            raise AllocationError(
                f"The id range {lo}-{hi - 1} is used up; widen the authenticator's id range."
            )
        cur.execute(_INSERT_NUMBER, {"kind": kind, "owner": owner, "number": number, "now": time.time()})
        return number

    # --- logins: one transaction and one durable commit for the logins that arrive together ---------

    def admit(self, admission: Admission) -> Admitted:
        """Record the nonce, bind the username, allocate or read the uid and the groups' gids.

        Raises NonceReused for a replay and UsernameTakenError for a name bound to another key; in
        both cases nothing is written.
        """
        (outcome,) = self._locked(lambda: self._admit_all([admission]))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _admit_all(self, admissions: list[Admission], engine: Engine | None = None) -> list[Outcome]:
        """Several logins in one transaction, each in its own savepoint: a replay or a taken name
        refuses that login alone, and all the others become durable with a single commit."""
        now = time.time()
        with self._transaction(engine) as cur:
            keep = max((a.nonce[2] for a in admissions if a.nonce is not None), default=None)
            if keep is not None and now - self._last_purge > 60:
                cur.execute(_PURGE_NONCES, {"before": now - keep})
                self._last_purge = now
            return [self._admit_one(cur, a, now) for a in admissions]

    def _admit_one(self, cur: _Cursor, a: Admission, now: float) -> Outcome:
        for _ in range(_RETRIES):
            cur.sql("SAVEPOINT hubkit_admit")
            try:
                admitted = self._write(cur, a, now)
            except IntegrityError:
                cur.sql("ROLLBACK TO SAVEPOINT hubkit_admit")
                cur.sql("RELEASE SAVEPOINT hubkit_admit")
                if a.nonce is not None and cur.first(_NONCE_SEEN, {"scope": a.nonce[0], "nonce": a.nonce[1]}):
                    return NonceReused("This launch was already used.")
                continue  # a concurrent replica took the number: look again
            except (UsernameTakenError, AllocationError) as e:
                cur.sql("ROLLBACK TO SAVEPOINT hubkit_admit")
                cur.sql("RELEASE SAVEPOINT hubkit_admit")
                return e
            cur.sql("RELEASE SAVEPOINT hubkit_admit")
            return admitted
        return AllocationError(f"Could not record the login of {a.key!r}; try again.")

    def _write(self, cur: _Cursor, a: Admission, now: float) -> Admitted:
        if a.nonce is not None:
            cur.execute(_INSERT_NONCE, {"scope": a.nonce[0], "nonce": a.nonce[1], "now": now})
        if a.username is not None:
            bound = cur.first(_BOUND_KEY, {"username": a.username})
            if bound is None:
                cur.execute(_BIND_USERNAME, {"username": a.username, "key": a.key, "now": now})
            elif bound[0] != a.key:
                raise UsernameTakenError(
                    f"The account name {a.username!r} already belongs to someone else; "
                    "ask the hub's admins to link or rename accounts."
                )
        uid = self._number(cur, "user", a.key, a.id_range) if a.allocate else None
        gids = {owner: self._number(cur, "group", owner, a.id_range) for owner in a.groups}
        return Admitted(uid, gids)

    def _number(self, cur: _Cursor, kind: str, owner: str, number_range: tuple[int, int]) -> int:
        found = cur.first(_NUMBER_OF, {"kind": kind, "owner": owner})
        if found is not None:
            return int(found[0])
        return self._insert_number(cur, kind, owner, number_range)

    async def aadmit(self, admission: Admission) -> Admitted:
        """``admit`` without blocking the event loop, sharing one commit with concurrent logins.

        Logins that reach this point in the same turn of the event loop (a class launching at once)
        are written together: one transaction, one durable commit (the costly part of a first login),
        each login still refused or admitted on its own. SQLite: the batch first runs right here on
        the loop, like JupyterHub's own short writes, but never waits: if another writer holds the
        lock it fails at once and the batch moves to a thread that may wait. Writing from a thread
        while JupyterHub writes on the loop would make the loop sleep in SQLite's busy handler instead.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admitted] = loop.create_future()
        if self._queue and self._queue[0][1].get_loop() is not loop:
            self._queue = []  # left by an event loop that stopped before its batch ran
        self._queue.append((admission, future))
        if len(self._queue) == 1:
            loop.call_soon(self._run_batch)
        return await future

    def _run_batch(self) -> None:
        batch, self._queue = self._queue, []
        admissions = [a for a, _ in batch]
        if self.inline_engine is not None and self._lock is not None and self._lock.acquire(blocking=False):
            outcomes: list[Any] | None = None
            try:
                outcomes = self._admit_all(admissions, self.inline_engine)
            except OperationalError as e:  # "locked": another writer is busy, so wait in a thread
                if "locked" not in str(e):
                    log.warning("Could not record %d login(s) in %s: %s", len(batch), self._where, e)
                    outcomes = [AllocationError(_BUSY)] * len(batch)
            except Exception as e:  # never leave a login waiting
                log.warning("Could not record %d login(s) in %s: %s", len(batch), self._where, e)
                outcomes = [AllocationError(_BUSY)] * len(batch)
            finally:
                self._lock.release()
            if outcomes is not None:
                _settle(batch, outcomes)
                return
        task = asyncio.ensure_future(asyncio.to_thread(self._locked, lambda: self._admit_all(admissions)))
        self._threads.add(task)

        def done(task: asyncio.Future[list[Outcome]]) -> None:
            self._threads.discard(task)
            error = task.exception()
            if error is not None:
                log.warning(
                    "Could not record %d login(s) in %s: %s",
                    len(batch),
                    self._where,
                    error.__cause__ or error,
                )
            _settle(batch, [error] * len(batch) if error is not None else task.result())

        task.add_done_callback(done)

    # --- usernames ---------------------------------------------------------------------------------

    def username_key(self, username: str) -> str | None:
        with self._reading() as cur:
            row = cur.first(_BOUND_KEY, {"username": username})
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
