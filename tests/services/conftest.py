"""Fixtures for the services tests: a hub with a lightweight spawner, the culler's service identity,
an honest fault-injecting HTTP proxy, and a real NFS-Ganesha server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from hubkit.services.culler import Culler, CullerSettings, build_culler
from hubkit.services.culler.scopes import culler_scopes
from hubkit_testing.hub import Hub
from hubkit_testing.nfs import GaneshaServer
from hubkit_testing.tiny_spawner import TINY_SPAWNER as TINY_SPAWNER_FRAGMENT

CULLER = "hubkit-culler"
# The scopes the culler itself asks for with a hold calendar and user culling (the settings these tests
# use at most): every culler test on a real hub then proves they are enough.
CULLER_SCOPES = culler_scopes({"calendar": {"path": "/sessions.ics"}, "users": {"inactive_days": 1}})

# Real local HTTP servers as the users' servers (named servers too): see hubkit_testing.tiny_spawner.
TINY_SPAWNER = TINY_SPAWNER_FRAGMENT + "c.JupyterHub.allow_named_servers = True\n"


def culler_service_config(token: str, extra: str = "") -> str:
    """Hub config registering the culler as a service with its own token and role."""
    return (
        TINY_SPAWNER
        + f"""
c.JupyterHub.services = c.JupyterHub.services + [{{"name": {CULLER!r}, "api_token": {token!r}{extra}}}]
c.JupyterHub.load_roles = c.JupyterHub.load_roles + [
    {{"name": "hubkit-culler", "scopes": {CULLER_SCOPES!r}, "services": [{CULLER!r}]}}
]
"""
    )


@dataclass
class CullerHub:
    hub: Hub
    token: str
    t0: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def api_url(self) -> str:
        return f"{self.hub.url}/hub/api"

    def culler(self, settings: CullerSettings, at: timedelta, api_url: str | None = None) -> Culler:
        """A culler whose clock reads ``t0 + at`` (the hub's own time keeps running for real)."""
        culler = build_culler(settings, api_url or self.api_url, self.token, CollectorRegistry())
        culler.clock = lambda: self.t0 + at
        return culler

    async def activity(self, user: str, at: timedelta, server: str = "") -> None:
        """Report activity as a single-user server would (the hub only moves activity forward)."""
        stamp = (self.t0 + at).isoformat()
        body = {"last_activity": stamp, "servers": {server: {"last_activity": stamp}}}
        await self.hub.api("POST", f"/users/{user}/activity", body)

    async def running(self) -> set[str]:
        users = await self.hub.api("GET", "/users?state=ready&limit=200")
        return {f"{u['name']}/{n}" for u in users for n, s in u["servers"].items() if s.get("ready")}

    async def start_named(self, user: str, name: str, options: dict[str, Any] | None = None) -> None:
        await self.hub.ensure_user(user)
        await self.hub.api("POST", f"/users/{user}/servers/{name}", options or {})
        for _ in range(200):
            model = await self.hub.api("GET", f"/users/{user}")
            if model["servers"].get(name, {}).get("ready"):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{user}/{name} did not become ready")


@pytest.fixture
def culler_hub(hub_factory: Callable[..., Hub]) -> Callable[..., CullerHub]:
    def make(extra_config: str = "") -> CullerHub:
        token = secrets.token_hex(16)
        hub = hub_factory(culler_service_config(token) + extra_config)
        return CullerHub(hub, token)

    return make


# --- a fault-injecting proxy in front of the hub ----------------------------------------------------


@dataclass
class FaultRules:
    """Which requests fail: the first ``fail_first`` with 503, paths containing a key of
    ``fail_paths`` with that status (always), ``hang_first`` requests hang past the client's timeout;
    ``rewrite`` corrupts answers."""

    fail_first: int = 0
    fail_paths: dict[str, int] = field(default_factory=dict)
    hang_first: int = 0
    hang_seconds: float = 5.0
    delay: float = 0.0
    rewrite: tuple[bytes, bytes] | None = None  # replace bytes in every response body


@dataclass
class FaultLog:
    seen: int = 0
    injected: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    requests: list[str] = field(default_factory=list)


class _ProxyHandler(RequestHandler):
    def initialize(self, upstream: str, rules: FaultRules, log: FaultLog, client: httpx.AsyncClient) -> None:
        self.upstream, self.rules, self.flog, self.client = upstream, rules, log, client

    async def _any(self) -> None:
        log = self.flog
        log.seen += 1
        n = log.seen
        log.in_flight += 1
        log.max_in_flight = max(log.max_in_flight, log.in_flight)
        log.requests.append(f"{self.request.method} {self.request.uri}")
        try:
            if self.rules.delay:
                await asyncio.sleep(self.rules.delay)
            if n <= self.rules.hang_first:
                log.injected += 1
                await asyncio.sleep(self.rules.hang_seconds)
            if n <= self.rules.hang_first + self.rules.fail_first and n > self.rules.hang_first:
                log.injected += 1
                self.set_status(503)
                self.finish({"status": 503, "message": "injected: hub unavailable"})
                return
            for needle, status in self.rules.fail_paths.items():
                if needle in (self.request.uri or ""):
                    log.injected += 1
                    self.set_status(status)
                    self.finish({"status": status, "message": f"injected failure for {needle}"})
                    return
            headers = {
                k: v for k, v in self.request.headers.items() if k.lower() not in ("host", "content-length")
            }
            r = await self.client.request(
                self.request.method or "GET",
                self.upstream + (self.request.uri or ""),
                headers=headers,
                content=self.request.body or None,
            )
            self.set_status(r.status_code)
            for k in ("Content-Type", "Retry-After"):
                if k in r.headers:
                    self.set_header(k, r.headers[k])
            if r.status_code in (204, 304):
                self.finish()
            elif self.rules.rewrite is not None:
                self.finish(r.content.replace(*self.rules.rewrite))
            else:
                self.finish(r.content)
        finally:
            log.in_flight -= 1

    get = post = delete = patch = put = _any


@dataclass
class FaultProxy:
    url: str
    rules: FaultRules
    log: FaultLog


@pytest.fixture
async def fault_proxy() -> AsyncIterator[Callable[[str, FaultRules], FaultProxy]]:
    servers: list[HTTPServer] = []
    client = httpx.AsyncClient(timeout=60)

    def make(upstream: str, rules: FaultRules) -> FaultProxy:
        log = FaultLog()
        app = Application(
            [(r"/.*", _ProxyHandler, {"upstream": upstream, "rules": rules, "log": log, "client": client})]
        )
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(app)
        server.add_sockets(sockets)
        servers.append(server)
        return FaultProxy(f"http://127.0.0.1:{sockets[0].getsockname()[1]}", rules, log)

    yield make
    for s in servers:
        s.stop()
    await client.aclose()


# --- NFS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ganesha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GaneshaServer]:
    server = GaneshaServer(tmp_path_factory.mktemp("ganesha")).start()
    try:
        yield server
    finally:
        server.stop()


def settings_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
