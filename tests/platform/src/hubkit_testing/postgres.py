"""A real PostgreSQL server (Debian's package) on a random loopback port, one fresh database per test.

HubKit keeps allocated ids, username bindings and LTI nonces in the hub's database, which may be
PostgreSQL instead of SQLite; tests run the same ledger and hub code against this server. The cluster
lives in a throwaway directory and runs without fsync (nothing here must survive a crash); as root it
runs as the ``postgres`` system user, since the server refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from .processes import ManagedProcess, PlatformError, free_port

SUPERUSER = "hubkit"


def server_bindir() -> Path:
    """The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise PlatformError(
            "PostgreSQL's server is not installed; run tests/platform/sysdeps.sh (Debian package postgresql)."
        )
    return found[-1].parent


class PostgresServer:
    """One PostgreSQL cluster: ``start()``, ``create_database()`` → URL, ``stop()``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="hubkit-pg-"))  # the server user must reach it
        self.process: ManagedProcess | None = None
        self.bindir = server_bindir()

    def _as_server_user(self) -> list[str]:
        if os.getuid() != 0:
            return []
        pw = pwd.getpwnam("postgres")
        os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups", "--"]

    def start(self) -> Self:
        bindir, prefix, data = self.bindir, self._as_server_user(), self.workdir / "data"
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
        done = subprocess.run([*prefix, *initdb, "--no-sync"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PlatformError(f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        argv = [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port)]
        argv += ["-k", str(self.workdir), "-c", "fsync=off", "-c", "max_connections=200"]
        self.process = ManagedProcess("postgres", [*prefix, *argv], self.workdir / "postgres.log").start()
        self.process.wait_until(self._accepts_connections, 30, "accepting connections")
        return self

    def _accepts_connections(self) -> bool:
        argv = [
            str(self.bindir / "pg_isready"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-q",
        ]
        return subprocess.run(argv, check=False).returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL (SQLAlchemy's default PostgreSQL driver, psycopg 3)."""
        import psycopg

        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.running():
            os.kill(self.process.pid, signal.SIGINT)  # "fast" shutdown: ends sessions, no waiting for clients
            try:
                assert self.process.popen is not None
                self.process.popen.wait(15)
            except subprocess.TimeoutExpired:
                pass
            self.process.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return postgres_server.create_database()
