"""Benchmark: 500 LTI 1.1 launches (100 concurrent), stock LTI11Authenticator vs HubKit's, same run.

Each launch is a fresh user signed by the LMS simulator just before it is sent (the stock validator
accepts only 30 s of clock skew). Both hubs keep auth_state; HubKit's additionally records nonces in the
hub database, allocates a uid, binds the username and manages course groups.

Last line: ``BENCH lti_launch ok=<n>/<N> p95_ms=<x> stock_p95_ms=<x> ratio=<hubkit_rate/stock_rate>``.
"""

from __future__ import annotations

import asyncio
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


@dataclass
class Result:
    ok: int
    latencies_ms: list[float]
    wall_s: float

    @property
    def p95_ms(self) -> float:
        return statistics.quantiles(self.latencies_ms, n=20)[18] if len(self.latencies_ms) > 1 else 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.wall_s


async def one_launch(hub: Hub, lms: LMSSimulator, prefix: str, i: int) -> tuple[bool, float]:
    who = Person(f"{prefix}-{i:04d}-{secrets.token_hex(3)}", "Bench Student")
    params = lms.lti11_params(who)
    start = time.perf_counter()
    async with httpx.AsyncClient(base_url=hub.url, timeout=120) as client:
        r = await client.post("/hub/lti/launch", data=params)
    return r.status_code == 302, (time.perf_counter() - start) * 1000


async def run(hub: Hub, lms: LMSSimulator, prefix: str, count: int) -> Result:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated(i: int) -> tuple[bool, float]:
        async with gate:
            return await one_launch(hub, lms, prefix, i)

    start = time.perf_counter()
    results = await asyncio.gather(*(gated(i) for i in range(count)))
    wall = time.perf_counter() - start
    return Result(sum(ok for ok, _ in results), [ms for _, ms in results], wall)


@dataclass
class Target:
    name: str
    hub: Hub
    lms: LMSSimulator
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
    return Target(name, hub, lms, [])


def merged(results: list[Result]) -> Result:
    return Result(
        sum(r.ok for r in results),
        [ms for r in results for ms in r.latencies_ms],
        sum(r.wall_s for r in results),
    )


async def main() -> int:
    """Both hubs run side by side; their halves alternate so background load hits both alike."""
    with tempfile.TemporaryDirectory(prefix="bench-lti-") as tmp:
        targets = [start(Path(tmp), "stock", STOCK), start(Path(tmp), "hubkit", HUBKIT)]
        try:
            for t in targets:
                await run(t.hub, t.lms, f"warm-{t.name}", WARMUP)
            for half in range(ROUNDS):
                for t in targets:
                    t.results.append(await run(t.hub, t.lms, f"{t.name}-{half}", LAUNCHES // ROUNDS))
        finally:
            for t in targets:
                t.hub.stop()
                t.lms.stop()
    stock, hubkit = (merged(t.results) for t in targets)
    for name, r in (("stock", stock), ("hubkit", hubkit)):
        print(
            f"{name}: ok={r.ok}/{LAUNCHES} wall={r.wall_s:.1f}s rate={r.rate:.1f}/s "
            f"p50_ms={statistics.median(r.latencies_ms):.0f} p95_ms={r.p95_ms:.0f}",
            flush=True,
        )
    ratio = hubkit.rate / stock.rate if stock.rate else 0.0
    print(
        f"BENCH lti_launch ok={hubkit.ok}/{LAUNCHES} p95_ms={hubkit.p95_ms:.0f} "
        f"stock_p95_ms={stock.p95_ms:.0f} ratio={ratio:.2f}"
    )
    return 0 if hubkit.ok == LAUNCHES else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
