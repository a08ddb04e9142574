"""Spawn storm: N users start servers at once through the hub's REST API, stock KubeSpawner vs HubKitSpawner.

Both runs use the hermetic platform (real kube-apiserver, scheduler, process kubelet running real
jupyterhub-singleuser processes), the same image and resources. HubKit runs with its identity (auth_state
from a login), the per-user NSS ConfigMap, restricted security contexts and a storage layout (home on a PVC
of a hostPath PV, subPath named by the identity). API calls are counted by a small counting proxy between
each hub and the API server, so the per-spawn numbers include only what the spawner itself sends
(watches count once, when opened).

Stock and HubKit alternate in rounds (``--rounds``, default 3; stock first in odd-numbered rounds, HubKit
first in even ones) because the machine's speed drifts during a run; each round prints both variants' ready
counts and p50/p95 and the p95 ratio, and the BENCH line gives the pooled numbers and the median ratio.

Run: ``make bench NAME=spawn_storm`` (or ``python bench/spawn_storm.py --users 30 --rounds 3``);
the last line is the BENCH line.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml
from aiohttp import web

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub, HubOptions
from hubkit_testing.kubespawner_config import kubespawner_config
from hubkit_testing.processes import free_port

CRYPT_KEY = "7f" * 32
T = TypeVar("T")


class CountingProxy:
    """Plain-HTTP → HTTPS forwarder to the API server that counts requests (streams watch responses)."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self.count = 0
        self.port = free_port()
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        ctx = ssl.create_default_context(cafile=str(self.cp.pki.ca_cert))  # type: ignore[union-attr]
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=0))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
        if self.session:
            await self.session.close()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        self.count += 1
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        body = await request.read()
        async with self.session.request(
            request.method, self.cp.server + request.path_qs, headers=headers, data=body or None,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as upstream:  # fmt: skip
            response = web.StreamResponse(status=upstream.status)
            for key in ("Content-Type",):
                if key in upstream.headers:
                    response.headers[key] = upstream.headers[key]
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionResetError, aiohttp.ClientError):
                pass
            return response

    def kubeconfig(self, path: Path) -> Path:
        token = self.cp.identities["admin"].token
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "p", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
                    "users": [{"name": "p", "user": {"token": token}}],
                    "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
                    "current-context": "p",
                }
            )
        )
        return path


def identities(n: int) -> dict[str, dict[str, Any]]:
    return {
        f"user{i}": {
            "groups": ["course:ds100:student"],
            "hubkit": {
                "key": f"github:{700000 + i}",
                "uid": 700000 + i,
                "gid": 700000 + i,
                "posix_groups": {"ds100": 30100},
                "home": f"github-{700000 + i}-{secrets.token_hex(4)}",
            },
        }
        for i in range(n)
    }


def auth_config(users: dict[str, dict[str, Any]]) -> str:
    return f"""
from jupyterhub.auth import DummyAuthenticator
IDS = {users!r}
class BenchAuthenticator(DummyAuthenticator):
    async def authenticate(self, handler, data):
        name = await super().authenticate(handler, data)
        if not name:
            return None
        spec = IDS.get(name, {{}})
        return {{"name": name, "auth_state": {{"hubkit": spec["hubkit"]}}, "groups": spec["groups"]}}
c.JupyterHub.authenticator_class = BenchAuthenticator
c.BenchAuthenticator.password = "hubkit"
c.Authenticator.manage_groups = True
c.Authenticator.enable_auth_state = True
c.JupyterHub.default_url = "/hub/home"
c.JupyterHub.concurrent_spawn_limit = 0
c.KubeSpawner.start_timeout = 300
c.KubeSpawner.http_timeout = 240
"""


def make_home_pvc(cp: ControlPlane, namespace: str, root: Path) -> None:
    pv = f"bench-home-{namespace}"
    cp.request("POST", "/api/v1/persistentvolumes", {
        "metadata": {"name": pv},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": "",
                 "hostPath": {"path": str(root), "type": "Directory"},
                 "claimRef": {"namespace": namespace, "name": "home-nfs"}},
    })  # fmt: skip
    cp.request("POST", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", {
        "metadata": {"name": "home-nfs"},
        "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "volumeName": pv,
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip


async def storm(hub: Hub, users: list[str], proxy: CountingProxy) -> tuple[list[float], int]:
    """Start every user's server at once; per-user seconds to ready (inf if never), API calls made."""
    for user in users:
        await (await hub.login(user)).aclose()
    proxy.count = 0
    headers = {"Authorization": f"token {hub.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        t0 = time.monotonic()
        done: dict[str, float] = {}

        async def start(user: str) -> None:
            async with http.post(f"{hub.url}/hub/api/users/{user}/server", json={}) as r:
                if r.status not in (201, 202):
                    print(f"{user}: {r.status} {await r.text()}", file=sys.stderr)
                    done[user] = float("inf")

        await asyncio.gather(*(start(u) for u in users))
        # One listing per second (not one poll per user): the poller must not load the hub it measures.
        while len(done) < len(users) and time.monotonic() - t0 < 300:
            async with http.get(f"{hub.url}/hub/api/users") as r:
                models = await r.json()
            now = time.monotonic() - t0
            for model in models:
                name, server = model["name"], model.get("servers", {}).get("")
                if name not in users or name in done:
                    continue
                if server and server.get("ready"):
                    done[name] = now
                elif not server and model.get("pending") is None:
                    done[name] = float("inf")  # its spawn failed
            await asyncio.sleep(1)
        durations = [done.get(u, float("inf")) for u in users]
        calls = proxy.count
        await asyncio.gather(*(http.delete(f"{hub.url}/hub/api/users/{u}/server") for u in users))
    for user in users:
        await hub.wait_for_server(user, ready=False, timeout=120)
    return list(durations), calls


def pct(values: list[float], q: float) -> float:
    ok = sorted(values)
    return ok[min(len(ok) - 1, max(0, round(q * (len(ok) - 1))))]


async def run_variant(
    cp: ControlPlane, proxy: CountingProxy, work: Path, kind: str, n: int
) -> tuple[list[float], int]:
    ns = cp.create_namespace(f"storm-{kind}-{secrets.token_hex(3)}")
    users = identities(n)
    config = auth_config(users)
    if kind == "stock":
        config = kubespawner_config(cp, ns, "kubespawner.KubeSpawner") + config
    else:
        homes = work / f"homes-{ns}"
        homes.mkdir(mode=0o777)
        homes.chmod(0o777)  # the process kubelet creates each subPath with its parent's mode
        make_home_pvc(cp, ns, homes)
        config = (
            kubespawner_config(cp, ns, "hubkit")
            + config
            + """
c.HubKitSpawner.storage_layout = {"home": {"pvc": "home-nfs", "mount_path": "/home/jovyan"}}
"""
        )
    kubeconfig = proxy.kubeconfig(work / f"{kind}.kubeconfig")
    hub = Hub(HubOptions(workdir=work / f"hub-{kind}", config=config, hub_ip=cp.gateway,
                         env={"KUBECONFIG": str(kubeconfig), "JUPYTERHUB_CRYPT_KEY": CRYPT_KEY}))  # fmt: skip
    await asyncio.to_thread(hub.start)
    try:
        return await storm(hub, list(users), proxy)
    finally:
        await asyncio.to_thread(hub.stop)
        cp.delete_namespace(ns)
        if kind != "stock":
            cp.request("DELETE", f"/api/v1/persistentvolumes/bench-home-{ns}")


def summary(durations: list[float]) -> tuple[int, float, float]:
    """Servers that became ready, p50 and p95 seconds among them (inf when none did)."""
    ok = [d for d in durations if d != float("inf")]
    if not ok:
        return 0, float("inf"), float("inf")
    return len(ok), pct(ok, 0.5), pct(ok, 0.95)


def round_order(index: int) -> tuple[str, str]:
    """Stock first in even rounds, HubKit first in odd ones: the machine's speed drifts during a run."""
    return ("stock", "hubkit") if index % 2 == 0 else ("hubkit", "stock")


async def alternate(
    rounds: int, prefix: str, run: Callable[[ControlPlane, CountingProxy, Path, str], Awaitable[T]]
) -> dict[str, list[T]]:
    """``run(cp, proxy, work, kind)`` for stock and HubKit in alternating rounds on one control plane."""
    results: dict[str, list[T]] = {"stock": [], "hubkit": []}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        cp = ControlPlane(work / "k8s").start()
        proxy = CountingProxy(cp)
        await proxy.start()
        try:
            for index in range(rounds):
                for kind in round_order(index):
                    results[kind].append(await run(cp, proxy, work, kind))
        finally:
            await proxy.stop()
            cp.stop()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="alternating stock/HubKit rounds (default 3)")
    args = parser.parse_args()
    n = args.users
    results = await alternate(
        args.rounds, "spawn-storm-", lambda cp, proxy, work, kind: run_variant(cp, proxy, work, kind, n)
    )
    ratios = []
    for index, (stock, hubkit) in enumerate(zip(results["stock"], results["hubkit"], strict=True)):
        (s_ready, s_p50, s_p95), (h_ready, h_p50, h_p95) = summary(stock[0]), summary(hubkit[0])
        ratios.append(h_p95 / s_p95)
        print(
            f"round {index + 1} ({' then '.join(round_order(index))}): "
            f"stock ready {s_ready}/{n} p50 {s_p50:.1f}s p95 {s_p95:.1f}s | "
            f"hubkit ready {h_ready}/{n} p50 {h_p50:.1f}s p95 {h_p95:.1f}s | p95 ratio {ratios[-1]:.2f}"
        )
    every = {kind: [d for durations, _ in runs for d in durations] for kind, runs in results.items()}
    calls = {kind: sum(c for _, c in runs) / (n * len(runs)) for kind, runs in results.items()}
    (h_ready, h_p50, h_p95), (s_ready, _, s_p95) = summary(every["hubkit"]), summary(every["stock"])
    total = n * args.rounds
    print(
        f"BENCH spawn_storm rounds={args.rounds} ready={h_ready}/{total} stock_ready={s_ready}/{total} "
        f"p50_s={h_p50:.2f} p95_s={h_p95:.2f} stock_p95_s={s_p95:.2f} "
        f"ratio_median={statistics.median(ratios):.2f} "
        f"ratio_min={min(ratios):.2f} ratio_max={max(ratios):.2f} "
        f"api_calls_per_spawn={calls['hubkit']:.1f} stock_api_calls_per_spawn={calls['stock']:.1f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
