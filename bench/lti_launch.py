"""Benchmark: 500 LTI 1.1 launches (100 concurrent), stock LTI11Authenticator vs HubKit's, same run.

Each launch is a fresh user signed by the LMS simulator just before it is sent (the stock validator
accepts only 30 s of clock skew), posted like a fresh browser (no cookies) over a shared connection
pool. Both hubs keep auth_state; HubKit's additionally records nonces in the hub database, allocates
a uid, binds the username and manages course groups (JupyterHub's ``manage_groups``).

A third hub runs HubKit with ``manage_groups`` off, so the output separates what HubKit's own code
costs from what JupyterHub's group synchronisation costs on every first login. The hub process's
CPU time per launch (from /proc) is reported for each, since the rate also depends on how busy the
machine's other core is.

The client must not be the bottleneck: an ``httpx.AsyncClient`` per launch spends ~30 ms of CPU
building an SSL context, which on a 2-core machine throttles both hubs alike and hides the hub-side
difference (that is how an earlier version of this benchmark reported 0.86-0.89).

Last line: ``BENCH lti_launch ok=<n>/<N> p95_ms=<x> stock_p95_ms=<x> ratio=<hubkit_rate/stock_rate>
nogroups_ratio=<x> hub_cpu_ms=<x> nogroups_hub_cpu_ms=<x> stock_hub_cpu_ms=<x>``.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.lms_simulator import LMSConfig, LMSSimulator, Person

LAUNCHES = 500
CONCURRENCY = 100
WARMUP = 20
ROUNDS = 5  # stock and HubKit alternate in rounds of 100, so background load hits both alike
KEY, SECRET = "bench-lms", "bench-lms-secret"

STOCK = f"""
c.JupyterHub.authenticator_class = "ltiauthenticator.lti11.auth.LTI11Authenticator"
c.Authenticator.enable_auth_state = True
c.LTI11Authenticator.consumers = {{{KEY!r}: {SECRET!r}}}
c.LTI11Authenticator.username_key = "user_id"
"""
HUBKIT = f"""
c.JupyterHub.authenticator_class = "hubkit-lti11"
c.Authenticator.enable_auth_state = True
c.HubKitLTI11Authenticator.consumers = {{{KEY!r}: {SECRET!r}}}
"""
HUBKIT_NO_GROUPS = HUBKIT + "c.HubKitLTI11Authenticator.manage_groups = False\n"


@dataclass
class Result:
    ok: int
    latencies_ms: list[float]
    wall_s: float
    hub_cpu_s: float

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20)[18] if len(self.latencies_ms) > 1 else 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.wall_s

    @property
    def hub_cpu_ms(self) -> float:
        return 1000 * self.hub_cpu_s / max(len(self.latencies_ms), 1)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_pool(hub: Hub) -> httpx.AsyncClient:
    """Connections shared by all launches, cookies never kept: each launch arrives like a new browser."""
    no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    return httpx.AsyncClient(base_url=hub.url, timeout=120, cookies=no_cookies, limits=limits)


async def one_launch(client: httpx.AsyncClient, lms: LMSSimulator, prefix: str, i: int) -> tuple[bool, float]:
    who = Person(f"{prefix}-{i:04d}-{secrets.token_hex(3)}", "Bench Student")
    params = lms.lti11_params(who)
    start = time.perf_counter()
    r = await client.post("/hub/lti/launch", data=params)
    return r.status_code == 302, (time.perf_counter() - start) * 1000


async def run(target: Target, prefix: str, count: int) -> Result:
    gate = asyncio.Semaphore(CONCURRENCY)
    assert target.hub.process is not None
    pid = target.hub.process.pid

    async def gated(i: int) -> tuple[bool, float]:
        async with gate:
            return await one_launch(target.client, target.lms, prefix, i)

    cpu, start = process_cpu_s(pid), time.perf_counter()
    results = await asyncio.gather(*(gated(i) for i in range(count)))
    wall, cpu = time.perf_counter() - start, process_cpu_s(pid) - cpu
    return Result(sum(ok for ok, _ in results), [ms for _, ms in results], wall, cpu)


@dataclass
class Target:
    name: str
    hub: Hub
    lms: LMSSimulator
    client: httpx.AsyncClient
    results: list[Result]


def start(workdir: Path, name: str, config: str) -> Target:
    lms = LMSSimulator(
        LMSConfig(hub_url="http://127.0.0.1:1", consumer_key=KEY, consumer_secret=SECRET)
    ).start()
    env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
    hub = Hub(HubOptions(workdir=workdir / name, config=config, env=env))
    try:
        hub.start()
    except BaseException:
        hub.stop()
        lms.stop()
        raise
    lms.config.hub_url = hub.url
    return Target(name, hub, lms, browser_pool(hub), [])


def merged(results: list[Result]) -> Result:
    return Result(
        sum(r.ok for r in results),
        [ms for r in results for ms in r.latencies_ms],
        sum(r.wall_s for r in results),
        sum(r.hub_cpu_s for r in results),
    )


async def main() -> int:
    """The hubs run side by side; their rounds alternate so background load hits all alike."""
    with tempfile.TemporaryDirectory(prefix="bench-lti-") as tmp:
        configs = (("stock", STOCK), ("hubkit", HUBKIT), ("nogroups", HUBKIT_NO_GROUPS))
        targets = [start(Path(tmp), name, config) for name, config in configs]
        try:
            for t in targets:
                await run(t, f"warm-{t.name}", WARMUP)
            for rnd in range(ROUNDS):
                for t in targets:
                    t.results.append(await run(t, f"{t.name}-{rnd}", LAUNCHES // ROUNDS))
        finally:
            for t in targets:
                await t.client.aclose()
                t.hub.stop()
                t.lms.stop()
    stock, hubkit, nogroups = (merged(t.results) for t in targets)
    for name, r in (("stock", stock), ("hubkit", hubkit), ("hubkit-no-groups", nogroups)):
        print(
            f"{name}: ok={r.ok}/{LAUNCHES} wall={r.wall_s:.1f}s rate={r.rate:.1f}/s "
            f"p50_ms={statistics.median(r.latencies_ms):.0f} p95_ms={r.p95_ms:.0f} "
            f"hub_cpu_ms_per_launch={r.hub_cpu_ms:.1f}",
            flush=True,
        )
    ratio = hubkit.rate / stock.rate if stock.rate else 0.0
    nogroups_ratio = nogroups.rate / stock.rate if stock.rate else 0.0
    print(
        f"BENCH lti_launch ok={hubkit.ok}/{LAUNCHES} p95_ms={hubkit.p95_ms:.0f} "
        f"stock_p95_ms={stock.p95_ms:.0f} ratio={ratio:.2f} nogroups_ratio={nogroups_ratio:.2f} "
        f"hub_cpu_ms={hubkit.hub_cpu_ms:.1f} nogroups_hub_cpu_ms={nogroups.hub_cpu_ms:.1f} "
        f"stock_hub_cpu_ms={stock.hub_cpu_ms:.1f}"
    )
    return 0 if hubkit.ok == LAUNCHES and nogroups.ok == LAUNCHES else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
