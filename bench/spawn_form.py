"""Spawn form under load: 200 users open the form at once, then 50 post it; stock KubeSpawner vs HubKit.

Both hubs run on the hermetic platform (real kube-apiserver, scheduler, process kubelet) with a profile
menu of three profiles, one of them a GPU profile (four simulated A100s on the kwok GPU node). Stock
KubeSpawner renders its own profile form; HubKitSpawner renders its menu with access rules and GPU free
counts, which it reads from one shared watch of nodes and pods (``hubkit.spawner.capacity_watch``) rather
than listing the cluster per render. Measured per variant and round:

- hub CPU seconds per form render (``utime + stime`` of the hub process from ``/proc``, over the burst of
  200 concurrent ``GET /hub/spawn``, divided by 200) and the renders' p50/p95 latency;
- API requests per render the hub sends during the burst (a counting proxy sits between hub and API server;
  a watch counts once, when opened);
- p95 latency of 50 concurrent form posts (``POST /hub/spawn``, answered once the spawn is under way);
  the 50 servers are then waited for and stopped, untimed.

Stock and HubKit alternate in rounds (``--rounds``, default 2; stock first in odd-numbered rounds) because
the machine's speed drifts. Run: ``make bench NAME=spawn_form``; the last line is the BENCH line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from pathlib import Path

import httpx
from spawn_storm import CRYPT_KEY, CountingProxy, alternate, auth_config, identities, pct

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.kubespawner_config import kubespawner_config
from hubkit_testing.nodes import KWOK_TAINT

PROFILES = f"""
c.KubeSpawner.profile_list = [
    {{"display_name": "Small", "slug": "small", "default": True,
      "kubespawner_override": {{"cpu_guarantee": 0.05, "mem_guarantee": "64M"}}}},
    {{"display_name": "Large", "slug": "large",
      "kubespawner_override": {{"cpu_guarantee": 0.1, "mem_guarantee": "128M"}}}},
    {{"display_name": "One A100 GPU", "slug": "a100", "GPU_BLOCK"
      "kubespawner_override": {{"tolerations": [{{**{KWOK_TAINT!r}, "operator": "Equal"}}]}}}},
]
"""
GPU_BLOCK = '"gpu": {"count": 1, "product": "NVIDIA-A100-SXM4-40GB", "name": "A100"},'


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed(coro: object) -> float:
    start = time.monotonic()
    await coro  # type: ignore[misc]
    return time.monotonic() - start


async def render(client: httpx.AsyncClient) -> None:
    r = await client.get("/hub/spawn")
    if r.status_code != 200 or 'name="profile"' not in r.text:
        raise RuntimeError(f"the spawn form answered {r.status_code}: {r.text[:200]}")


async def post(client: httpx.AsyncClient) -> None:
    data = {"profile": "small", "_xsrf": client.cookies.get("_xsrf") or ""}
    r = await client.post("/hub/spawn", data=data, follow_redirects=False)
    if r.status_code not in (302, 303):
        raise RuntimeError(f"posting the spawn form answered {r.status_code}: {r.text[:200]}")


async def run_variant(
    cp: ControlPlane, proxy: CountingProxy, work: Path, kind: str, users: int, posters: int
) -> dict[str, float]:
    ns = cp.create_namespace(f"form-{kind}-{secrets.token_hex(3)}")
    ids = identities(users)
    profiles = PROFILES.replace('"GPU_BLOCK"', GPU_BLOCK if kind == "hubkit" else "")
    spawner = "kubespawner.KubeSpawner" if kind == "stock" else "hubkit"
    config = kubespawner_config(cp, ns, spawner) + auth_config(ids) + profiles
    if kind == "hubkit":
        config = config.replace("c.KubeSpawner.profile_list", "c.HubKitSpawner.profile_list")
    kubeconfig = proxy.kubeconfig(work / f"{kind}-{ns}.kubeconfig")
    hub = Hub(HubOptions(workdir=work / f"hub-{ns}", config=config, hub_ip=cp.gateway,
                         env={"KUBECONFIG": str(kubeconfig), "JUPYTERHUB_CRYPT_KEY": CRYPT_KEY}))  # fmt: skip
    await asyncio.to_thread(hub.start)
    clients: list[httpx.AsyncClient] = []
    try:
        for name in ids:
            clients.append(await hub.login(name))
        await render(clients[0])  # warm-up: the first render starts HubKit's watches
        assert hub.process is not None
        pid = hub.process.pid
        proxy.count = 0
        cpu0 = cpu_seconds(pid)
        latencies = await asyncio.gather(*(timed(render(c)) for c in clients))
        cpu = cpu_seconds(pid) - cpu0
        calls = proxy.count
        posts = await asyncio.gather(*(timed(post(c)) for c in clients[:posters]))
        for name in list(ids)[:posters]:
            await hub.wait_for_server(name, ready=True, timeout=300)
        await asyncio.gather(*(hub.stop_server(name, timeout=120) for name in list(ids)[:posters]))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
        await asyncio.to_thread(hub.stop)
        cp.delete_namespace(ns)
    return {
        "cpu_ms_per_render": 1000 * cpu / users,
        "render_p50_s": pct(list(latencies), 0.5),
        "render_p95_s": pct(list(latencies), 0.95),
        "api_calls_per_render": calls / users,
        "post_p95_s": pct(list(posts), 0.95),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200, help="users opening the form at once")
    parser.add_argument("--posters", type=int, default=50, help="users then posting it at once")
    parser.add_argument("--rounds", type=int, default=2, help="alternating stock/HubKit rounds")
    args = parser.parse_args()

    async def run(cp: ControlPlane, proxy: CountingProxy, work: Path, kind: str) -> dict[str, float]:
        result = await run_variant(cp, proxy, work, kind, args.users, args.posters)
        print(f"{kind}: " + " ".join(f"{k}={v:.3f}" for k, v in result.items()), flush=True)
        return result

    results = await alternate(args.rounds, "spawn-form-", run)

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    ratios = [h["cpu_ms_per_render"] / s["cpu_ms_per_render"] for s, h in zip(*results.values(), strict=True)]
    print(
        f"BENCH spawn_form users={args.users} posters={args.posters} rounds={args.rounds} "
        f"cpu_ms_per_render={median('hubkit', 'cpu_ms_per_render'):.2f} "
        f"stock_cpu_ms_per_render={median('stock', 'cpu_ms_per_render'):.2f} "
        f"cpu_ratio_median={statistics.median(ratios):.2f} "
        f"render_p95_s={median('hubkit', 'render_p95_s'):.2f} "
        f"stock_render_p95_s={median('stock', 'render_p95_s'):.2f} "
        f"api_calls_per_render={median('hubkit', 'api_calls_per_render'):.3f} "
        f"stock_api_calls_per_render={median('stock', 'api_calls_per_render'):.3f} "
        f"post_p95_s={median('hubkit', 'post_p95_s'):.2f} "
        f"stock_post_p95_s={median('stock', 'post_p95_s'):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
