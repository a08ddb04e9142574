"""A jupyterhub_config.py fragment whose servers are real local HTTP server processes.

For tests of things that only talk to the hub (the culler, its image): the hub sees real servers start,
answer on a port and stop, without Kubernetes.
"""

from __future__ import annotations

TINY_SPAWNER = """
import asyncio, socket, sys
from jupyterhub.spawner import Spawner

class TinySpawner(Spawner):
    proc = None

    async def start(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        return ("127.0.0.1", port)

    async def poll(self):
        if self.proc is None:
            return 0
        return self.proc.returncode

    async def stop(self, now=False):
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        self.proc = None

c.JupyterHub.spawner_class = TinySpawner
"""
