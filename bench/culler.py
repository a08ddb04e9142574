"""Benchmark: one full sweep of jupyterhub-idle-culler 2.x vs hubkit-culler on a hub with 10,000 users.

Both cullers run against the *same* seeded state: the hub database is seeded once (10,000 users, 2,000
running servers with varied last activity), copied, and each culler gets its own real JupyterHub +
configurable-http-proxy started from its copy. The single-user "servers" are one tiny asyncio HTTP
responder shared by all (the cullers only talk to the hub API). Both use the same idle timeout (1 h),
the same concurrency bound (20) and page size (200). Each server's stop takes STOP_SECONDS in the
spawner, as a real spawner's does; the hub's own per-stop work then bounds how much concurrency
can gain (measured on the 2-core machine: ~1.2x with an instant stop, ~6.7x with 0.25 s at
concurrency 10; the speedup can never exceed the concurrency bound, as idle-culler awaits each
user's culls one after the other). Activity is drawn so that no server sits within 20 minutes of
the timeout, so the minutes between the two runs cannot change the expected set.

Requests are counted from each hub's own request log (lines attributed to the culler's service).
Run: /work/main/.venv/bin/python bench/culler.py
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jupyterhub import orm
from jupyterhub_idle_culler import cull_idle
from prometheus_client import CollectorRegistry
from sqlalchemy import insert

from hubkit.services.culler import CullerSettings, build_culler
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.processes import free_port

USERS, RUNNING, TIMEOUT, CONCURRENCY, PAGE = 10_000, 2_000, 3600, 20, 200
# A real spawner's stop is not instant: KubeSpawner deletes the pod (grace period 1 s by default) and
# waits until its informer sees it gone, typically 1-3 s. The bench models a conservative 0.5 s.
STOP_SECONDS = 0.5
IDLE_TOKEN, HUBKIT_TOKEN = "b3f1" * 8, "9c2e" * 8

RESPONDER = """
import asyncio, sys
async def handle(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            while (await reader.readline()) not in (b"\\r\\n", b""):
                pass
            writer.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=4096)
    await server.serve_forever()
asyncio.run(main())
"""

SPAWNER = """
import asyncio
from jupyterhub.spawner import Spawner

class SharedResponderSpawner(Spawner):
    # Every server is the bench's shared responder; state says whether it counts as running.
    running = False
    def load_state(self, state):
        super().load_state(state)
        self.running = bool(state.get("running"))
    def get_state(self):
        return {**super().get_state(), "running": self.running}
    async def start(self):
        self.running = True
        return ("127.0.0.1", PORT)
    async def poll(self):
        return None if self.running else 0
    async def stop(self, now=False):
        await asyncio.sleep(STOP_SECONDS)
        self.running = False

c.JupyterHub.spawner_class = SharedResponderSpawner
c.JupyterHub.last_activity_interval = 0  # the proxy's route activity must not overwrite the seeded one
c.JupyterHub.init_spawners_timeout = -1
c.Spawner.poll_interval = 3600
c.JupyterHub.log_level = "INFO"
c.JupyterHub.services = c.JupyterHub.services + [
    {"name": "idle-culler", "api_token": IDLE_TOKEN},
    {"name": "hubkit-culler", "api_token": HUBKIT_TOKEN},
]
c.JupyterHub.load_roles = c.JupyterHub.load_roles + [{
    "name": "culler",
    "scopes": ["list:users", "read:users:name", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler", "hubkit-culler"],
}]
"""


def seed(db: Path, port: int, now: datetime) -> set[str]:
    """Insert users and running servers; returns the names whose server is idle past the timeout."""
    rng = random.Random(20261122)
    naive = now.replace(tzinfo=None)
    session = orm.new_session_factory(f"sqlite:///{db}")()
    names = [f"user{i:05d}" for i in range(USERS)]
    session.execute(
        insert(orm.User),
        [
            {
                "name": n,
                "created": naive - timedelta(days=30),
                "last_activity": naive - timedelta(days=rng.uniform(0, 20)),
                "admin": False,
            }
            for n in names
        ],
    )
    ids = {u.name: u.id for u in session.query(orm.User)}
    running = rng.sample(names, RUNNING)
    session.execute(
        insert(orm.Server),
        [
            {
                "proto": "http",
                "ip": "127.0.0.1",
                "port": port,
                "base_url": f"/user/{n}/",
                "cookie_name": f"jupyterhub-user-{n}",
            }
            for n in running
        ],
    )
    servers = {s.base_url: s.id for s in session.query(orm.Server)}
    expected, rows = set(), []
    for n in running:
        kind = rng.random()
        if kind < 0.65:
            idle = timedelta(minutes=rng.uniform(1, 40))  # active: kept
        elif kind < 0.95:
            idle = timedelta(minutes=rng.uniform(80, 72 * 60))  # idle: culled
        else:
            idle = None  # never reported activity: judged by its start time (3 to 10 h ago): culled
        started = naive - (idle or timedelta(hours=3)) - timedelta(minutes=rng.uniform(0, 420))
        last = naive - idle if idle is not None else None
        if idle is None or idle.total_seconds() >= TIMEOUT:
            expected.add(n)
        rows.append(
            {
                "user_id": ids[n],
                "server_id": servers[f"/user/{n}/"],
                "name": "",
                "state": {"running": True},
                "started": started,
                "last_activity": last,
                "user_options": {},
            }
        )
    session.execute(insert(orm.Spawner), rows)
    session.commit()
    session.close()
    return expected


async def ready_servers(hub: Hub) -> set[str]:
    names: set[str] = set()
    offset = 0
    while True:
        page = await hub.api("GET", f"/users?state=ready&offset={offset}&limit={PAGE}")
        names.update(u["name"] for u in page)
        if len(page) < PAGE:
            return names
        offset += PAGE


async def wait_settled(hub: Hub) -> None:
    for _ in range(600):
        users = await hub.api("GET", "/users?state=active&limit=200")
        if not any(s.get("pending") for u in users for s in u.get("servers", {}).values()):
            return
        await asyncio.sleep(0.5)


def count_requests(hub: Hub, service: str) -> int:
    return sum(f"({service}@" in line for line in hub.log_path.read_text().splitlines())


async def run_idle_culler(hub: Hub) -> float:
    log = logging.getLogger("idle-culler")
    log.setLevel(logging.WARNING)
    t0 = time.perf_counter()
    await cull_idle(
        f"http://127.0.0.1:{hub.hub_port}/hub/api",
        IDLE_TOKEN,
        TIMEOUT,
        log,
        concurrency=CONCURRENCY,
        api_page_size=PAGE,
    )
    return time.perf_counter() - t0


async def run_hubkit(hub: Hub) -> float:
    settings = CullerSettings(idle_timeout_seconds=TIMEOUT, concurrency=CONCURRENCY, page_size=PAGE)
    culler = build_culler(
        settings, f"http://127.0.0.1:{hub.hub_port}/hub/api", HUBKIT_TOKEN, CollectorRegistry()
    )
    t0 = time.perf_counter()
    report = await culler.sweep()
    seconds = time.perf_counter() - t0
    await culler.client.aclose()
    if report.skipped is not None or report.failed:
        raise RuntimeError(f"hubkit sweep failed: {report.skipped} {report.failed[:3]}")
    return seconds


async def one_run(work: Path, name: str, db: Path, config: str) -> tuple[float, set[str], int]:
    hub_dir = work / name
    hub_dir.mkdir()
    shutil.copy(db, hub_dir / "jupyterhub.sqlite")
    t0 = time.perf_counter()
    hub = Hub(HubOptions(workdir=hub_dir, config=config)).start(timeout=900)
    print(f"{name}: hub up with the seeded state in {time.perf_counter() - t0:.1f} s", flush=True)
    try:
        before = await ready_servers(hub)
        assert len(before) == RUNNING, f"{len(before)} servers ready, expected {RUNNING}"
        seconds = await (run_idle_culler(hub) if name == "idle-culler" else run_hubkit(hub))
        await wait_settled(hub)
        culled = before - await ready_servers(hub)
        requests = count_requests(hub, name)
    finally:
        hub.stop()
    print(f"{name}: culled {len(culled)} servers in {seconds:.2f} s with {requests} requests", flush=True)
    return seconds, culled, requests


def workdir() -> Path:
    """On tmpfs: a production hub's database is a server, not SQLite fsyncs on the hub's event loop;
    both cullers get the same hub either way."""
    shm = Path("/dev/shm")
    return Path(tempfile.mkdtemp(prefix="hubkit-bench-culler-", dir=shm if shm.is_dir() else None))


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    work = workdir()
    port = free_port()
    responder = subprocess.Popen([sys.executable, "-c", RESPONDER, str(port)])  # noqa: ASYNC220
    config = SPAWNER.replace("PORT", str(port)).replace("IDLE_TOKEN", repr(IDLE_TOKEN))
    config = config.replace("HUBKIT_TOKEN", repr(HUBKIT_TOKEN)).replace("STOP_SECONDS", repr(STOP_SECONDS))
    try:
        schema = Hub(HubOptions(workdir=work / "schema", config=config)).start(timeout=120)
        schema.stop()
        db = work / "seed.sqlite"
        shutil.copy(work / "schema" / "jupyterhub.sqlite", db)
        t0 = time.perf_counter()
        expected = seed(db, port, datetime.now(UTC))
        print(
            f"seeded {USERS} users, {RUNNING} running servers ({len(expected)} idle past 1 h) "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        idle_s, idle_set, idle_requests = await one_run(work, "idle-culler", db, config)
        hubkit_s, hubkit_set, hubkit_requests = await one_run(work, "hubkit-culler", db, config)
    finally:
        responder.terminate()
        responder.wait()
    same = idle_set == hubkit_set == expected
    if not same:
        print(
            f"differences: idle-only {sorted(idle_set - hubkit_set)[:5]}, hubkit-only "
            f"{sorted(hubkit_set - idle_set)[:5]}, expected-but-missed {sorted(expected - hubkit_set)[:5]}"
        )
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"BENCH culler users={USERS} running={RUNNING} same_set={'yes' if same else 'no'} "
        f"idle_culler_s={idle_s:.2f} hubkit_s={hubkit_s:.2f} speedup={idle_s / hubkit_s:.1f} "
        f"requests={hubkit_requests} idle_culler_requests={idle_requests}"
    )


if __name__ == "__main__":
    asyncio.run(main())
