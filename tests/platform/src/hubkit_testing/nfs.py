"""A real userspace NFS server for tests: Debian's NFS-Ganesha (VFS backend) on loopback.

It serves one directory over NFSv4 on a free TCP port of 127.0.0.1, with no rpcbind and no kernel
NFS; clients use libnfs (``nfs://127.0.0.1/export?version=4&nfsport=<port>``). ``pause()``/``resume()``
SIGSTOP/SIGCONT the server: its clients' calls then hang exactly as they do against a wedged server.
"""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from .processes import ManagedProcess, PlatformError, free_port, port_is_open

__all__ = ["GaneshaServer"]

CONFIG = """
NFS_CORE_PARAM {{
    Protocols = 4;
    Bind_addr = 127.0.0.1;
    NFS_Port = {port};
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}}
NFSV4 {{
    Graceless = true;
    Only_Numeric_Owners = true;
    RecoveryBackend = fs;
    RecoveryRoot = {recovery};
    Lease_Lifetime = 20;
}}
EXPORT {{
    Export_Id = 1;
    Path = {export};
    Pseudo = /export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Attr_Expiration_Time = 0;
    Protocols = 4;
    FSAL {{ Name = VFS; }}
}}
"""


@dataclass
class GaneshaServer:
    """``ganesha.nfsd`` in the foreground, logging to ``workdir/ganesha.log``."""

    workdir: Path
    port: int = 0
    process: ManagedProcess | None = None

    @property
    def export_dir(self) -> Path:
        return self.workdir / "export"

    @property
    def url(self) -> str:
        """The libnfs URL of the export's root (append a path before the ``?``)."""
        return self.url_for("")

    def url_for(self, path: str) -> str:
        sub = "/" + path.strip("/") if path.strip("/") else ""
        return f"nfs://127.0.0.1/export{sub}?version=4&nfsport={self.port}"

    def start(self, timeout: float = 20) -> GaneshaServer:
        binary = shutil.which("ganesha.nfsd")
        if binary is None:
            raise PlatformError("ganesha.nfsd is not installed (run tests/platform/sysdeps.sh)")
        self.port = self.port or free_port()
        self.export_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "recovery").mkdir(exist_ok=True)
        conf = self.workdir / "ganesha.conf"
        conf.write_text(
            CONFIG.format(port=self.port, recovery=self.workdir / "recovery", export=self.export_dir)
        )
        argv = [
            binary,
            "-F",
            "-f",
            str(conf),
            "-L",
            str(self.workdir / "ganesha.log"),
            "-p",
            str(self.workdir / "ganesha.pid"),
        ]
        self.process = ManagedProcess("ganesha.nfsd", argv, self.workdir / "ganesha.out").start()
        self.process.wait_until(lambda: port_is_open("127.0.0.1", self.port), timeout, "serving NFS")
        return self

    def pause(self) -> None:
        """Freeze the server: every NFS call to it hangs until ``resume()``."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.running():
                self.resume()
            self.process.stop(timeout=10)
