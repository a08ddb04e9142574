"""The probe itself, run in a child process that the service can kill when a call hangs.

``python -m hubkit.services.nfs_keepalive.worker directory <dir> <file>`` or ``... nfs <url> <file>``
prints one JSON line per event: ``{"begin": step}`` before a step, ``{"step": s, "seconds": t}``
after it, ``{"step": s, "error": msg}`` on failure (then exits 1), ``{"done": true}`` at the end.
Steps: (connect,) write, fsync, rename, read, stat. The file is written as ``<name>.new`` and renamed
over ``<name>``, so a full volume fails at write (a truncate-in-place would reuse the old blocks).
A hung system or NFS call leaves the last ``begin`` as the only trace, which is exactly what the
parent needs to say which step hung.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hubkit.services.nfs_keepalive.exceptions import ProbeStepError

__all__ = ["main", "probe_directory", "probe_nfs"]

Emit = Callable[[dict[str, Any]], None]


def _payload() -> bytes:
    stamp = datetime.now(UTC).isoformat()
    return f"hubkit-nfs-keepalive {socket.gethostname()} {stamp} {os.urandom(6).hex()}\n".encode()


def _timed(emit: Emit, step: str, action: Callable[[], Any]) -> Any:
    emit({"begin": step})
    t0 = time.perf_counter()
    try:
        result = action()
    except OSError as e:
        raise ProbeStepError(step, e.strerror or str(e)) from e
    emit({"step": step, "seconds": time.perf_counter() - t0})
    return result


def probe_directory(directory: str, name: str, emit: Emit) -> None:
    """Write a timestamped file in a mounted directory, fsync it, read it back, stat the directory."""
    path = os.path.join(directory, name)
    data = _payload()

    def write() -> int:
        fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if os.write(fd, data) != len(data):
                raise OSError(0, "short write")
        except BaseException:
            os.close(fd)
            raise
        return fd

    fd = _timed(emit, "write", write)

    def fsync() -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    _timed(emit, "fsync", fsync)
    _timed(emit, "rename", lambda: os.replace(path + ".new", path))

    def read() -> None:
        with open(path, "rb") as f:
            if f.read() != data:
                raise OSError(0, "read back different content than was written")

    _timed(emit, "read", read)
    _timed(emit, "stat", lambda: os.stat(directory))


def probe_nfs(url: str, name: str, emit: Emit) -> None:
    """The same probe at the NFS protocol level with libnfs (no kernel mount needed)."""
    from libnfs import libnfs as nfs  # type: ignore[import-untyped]  # optional extra "nfs"

    ctx = nfs.nfs_init_context()

    def check(status: int, what: str) -> int:
        if status < 0:
            raise OSError(-status, f"{what}: {nfs.nfs_get_error(ctx) or os.strerror(-status)}")
        return status

    def connect() -> Any:
        parsed = nfs.nfs_parse_url_dir(ctx, url)
        if parsed is None:
            raise OSError(0, f"not a valid nfs:// URL: {nfs.nfs_get_error(ctx)}")
        check(nfs.nfs_mount(ctx, parsed.server, parsed.path), "mount")
        return parsed

    _timed(emit, "connect", connect)
    path, data = "/" + name, bytearray(_payload())

    def write() -> Any:
        nfs.nfs_unlink(ctx, path + ".new")  # NFSv4 O_CREAT is exclusive in libnfs: start from no file
        handle = nfs.new_NFSFileHandle()
        check(nfs.nfs_create(ctx, path + ".new", os.O_WRONLY, 0o644, handle), "create")
        fh = nfs.NFSFileHandle_value(handle)
        if check(nfs.nfs_write(ctx, fh, len(data), data), "write") != len(data):
            raise OSError(0, "short write")
        return fh

    fh = _timed(emit, "write", write)

    def fsync() -> None:
        check(nfs.nfs_fsync(ctx, fh), "fsync")
        check(nfs.nfs_close(ctx, fh), "close")

    _timed(emit, "fsync", fsync)
    _timed(emit, "rename", lambda: check(nfs.nfs_rename(ctx, path + ".new", path), "rename"))

    def read() -> None:
        handle = nfs.new_NFSFileHandle()
        check(nfs.nfs_open(ctx, path, os.O_RDONLY, handle), "open")
        rfh = nfs.NFSFileHandle_value(handle)
        buf = bytearray(len(data) + 16)
        count = check(nfs.nfs_read(ctx, rfh, len(buf), buf), "read")
        nfs.nfs_close(ctx, rfh)
        if bytes(buf[:count]) != bytes(data):
            raise OSError(0, "read back different content than was written")

    _timed(emit, "read", read)
    _timed(emit, "stat", lambda: check(nfs.nfs_stat64(ctx, "/", nfs.nfs_stat_64()), "stat"))
    nfs.nfs_destroy_context(ctx)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] not in ("directory", "nfs"):
        print("usage: worker (directory <dir> | nfs <url>) <file name>", file=sys.stderr)
        return 2

    def emit(event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    mode, target, name = args
    try:
        (probe_directory if mode == "directory" else probe_nfs)(target, name, emit)
    except ProbeStepError as e:
        emit({"step": e.step, "error": str(e).split(": ", 1)[1]})
        return 1
    emit({"done": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
