"""A real JupyterHub (5.3+ or 6.x: the venv's) with configurable-http-proxy on random loopback ports, plus
REST helpers.

The hub's own API listens on the pod network's gateway address so that single-user servers in pods
can call back to it; the public proxy listens on 127.0.0.1 for tests and browsers.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .certs import PKI
from .processes import ManagedProcess, PlatformError, free_port
from .tools import proxy_command

ADMIN_SERVICE = "hubkit-test-admin"


@dataclass
class HubOptions:
    """How to run one hub. ``config`` is Python appended to the generated jupyterhub_config.py."""

    workdir: Path
    config: str = ""
    hub_ip: str = "127.0.0.1"
    port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    # A directory the hub sees at /usr/local/etc (in a private mount namespace: nothing changes on the
    # host), as zero-to-jupyterhub's hub pod sees its ConfigMap and Secret under /usr/local/etc/jupyterhub.
    etc_dir: Path | None = None
    tls: PKI | None = None  # serve the public proxy over https with this PKI's serving certificate


class Hub:
    """One running JupyterHub. Use ``await hub.api(...)``, ``login``, ``start_server``, ``stop_server``."""

    def __init__(self, options: HubOptions) -> None:
        self.options = options
        self.port = options.port or free_port()
        self.proxy_api_port = free_port()
        self.hub_port = free_port(options.hub_ip)
        self.admin_token = secrets.token_hex(16)
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The public URL (through configurable-http-proxy)."""
        return self.public_url("127.0.0.1")

    def public_url(self, host: str) -> str:
        """The public URL under another name for loopback (a browser mapping ``hub.test`` to it)."""
        return f"{'https' if self.options.tls else 'http'}://{host}:{self.port}"

    def _verify(self) -> ssl.SSLContext | bool:
        tls = self.options.tls
        return ssl.create_default_context(cafile=tls.ca_cert) if tls else True

    @property
    def log_path(self) -> Path:
        return self.options.workdir / "jupyterhub.log"

    def config_text(self) -> str:
        w = self.options.workdir
        base = f"""
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {self.port}
c.JupyterHub.hub_ip = {self.options.hub_ip!r}
c.JupyterHub.hub_port = {self.hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy_command()!r}]
c.JupyterHub.db_url = "sqlite:///{w / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = "{w / "jupyterhub_cookie_secret"}"
c.JupyterHub.pid_file = "{w / "jupyterhub.pid"}"
c.JupyterHub.services = [{{"name": {ADMIN_SERVICE!r}, "api_token": {self.admin_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "hubkit-test-admin",
    "scopes": ["admin:users", "admin:servers", "access:servers", "admin:groups", "read:hub", "tokens",
               "read:metrics"],
    "services": [{ADMIN_SERVICE!r}],
}}]
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "hubkit"
c.Authenticator.allow_all = True
c.JupyterHub.cleanup_servers = True
"""
        if self.options.tls:
            base += f"c.JupyterHub.ssl_cert = {str(self.options.tls.serving_cert)!r}\n"
            base += f"c.JupyterHub.ssl_key = {str(self.options.tls.serving_key)!r}\n"
        return base + "\n# --- test configuration ---\n" + self.options.config

    def start(self, timeout: float = 60) -> Hub:
        w = self.options.workdir
        w.mkdir(parents=True, exist_ok=True)
        config = w / "jupyterhub_config.py"
        config.write_text(self.config_text())
        env = dict(os.environ) | self.options.env
        argv = [sys.executable, "-m", "jupyterhub", "-f", str(config)]
        if self.options.etc_dir is not None:
            mount = 'mount --bind "$0" /usr/local/etc && exec "$@"'
            unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount]
            argv = [*unshare, str(self.options.etc_dir), *argv]
        self.process = ManagedProcess("jupyterhub", argv, self.log_path, env=env, cwd=w).start()
        self.process.wait_until(self._healthy, timeout, "answering on /hub/health")
        return self

    def _healthy(self) -> bool:
        verify = self._verify()
        context = verify if isinstance(verify, ssl.SSLContext) else None
        with urllib.request.urlopen(f"{self.url}/hub/health", timeout=1, context=context) as r:
            return bool(r.status == 200)

    def stop(self) -> None:
        """SIGTERM the hub (it stops the proxy it started) and reap both."""
        if self.process is not None:
            self.process.stop(timeout=20)

    # --- REST helpers ----------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, verify=self._verify(), **kwargs)

    async def api(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        """Call the hub's REST API as the admin service; returns the decoded JSON (or None)."""
        async with self.client(headers={"Authorization": f"token {self.admin_token}"}) as c:
            r = await c.request(method, f"/hub/api{path}", json=body)
        if expect is not None and r.status_code != expect:
            raise AssertionError(f"{method} {path} answered {r.status_code}, expected {expect}: {r.text}")
        if r.status_code >= 400 and expect is None:
            raise PlatformError(f"{method} {path} answered {r.status_code}: {r.text}")
        return r.json() if r.content else None

    async def login(self, username: str, password: str = "hubkit") -> httpx.AsyncClient:
        """A browser-like client logged in through the login form (with its _xsrf token)."""
        c = self.client(follow_redirects=True)
        page = await c.get("/hub/login")
        xsrf = c.cookies.get("_xsrf") or ""
        r = await c.post("/hub/login", data={"username": username, "password": password, "_xsrf": xsrf})
        if "jupyterhub-session-id" not in c.cookies and r.url.path.endswith("/login"):
            await c.aclose()
            raise PlatformError(
                f"login as {username} failed ({page.status_code}/{r.status_code}): {r.text[:300]}"
            )
        return c

    async def start_server(
        self, user: str, options: dict[str, Any] | None = None, timeout: float = 90
    ) -> str:
        """Create ``user`` if needed, start their default server, wait until ready; returns its URL."""
        await self.ensure_user(user)
        async with self.client(headers={"Authorization": f"token {self.admin_token}"}) as c:
            r = await c.post(f"/hub/api/users/{user}/server", json=options or {})
        if r.status_code not in (201, 202):
            raise PlatformError(f"starting {user}'s server answered {r.status_code}: {r.text}")
        await self.wait_for_server(user, ready=True, timeout=timeout)
        return f"{self.url}/user/{user}/"

    async def ensure_user(self, user: str) -> None:
        async with self.client(headers={"Authorization": f"token {self.admin_token}"}) as c:
            r = await c.get(f"/hub/api/users/{user}")
            if r.status_code == 404:
                r = await c.post(f"/hub/api/users/{user}")
            if r.status_code >= 400:
                raise PlatformError(f"creating user {user} answered {r.status_code}: {r.text}")

    async def wait_for_server(self, user: str, ready: bool, timeout: float = 90) -> dict[str, Any]:
        """Poll the user model until the default server is ready (or gone, with ready=False)."""
        deadline = time.monotonic() + timeout
        model: dict[str, Any] = {}
        while time.monotonic() < deadline:
            model = await self.api("GET", f"/users/{user}")
            server = model.get("servers", {}).get("")
            if ready and server and server.get("ready"):
                return model
            if not ready and not server:
                return model
            if ready and not server and model.get("pending") is None:
                raise PlatformError(f"{user}'s server stopped while starting; hub log: {self.log_path}")
            await asyncio.sleep(0.25)
        raise PlatformError(
            f"{user}'s server was not {'ready' if ready else 'stopped'} within {timeout:.0f} s: "
            f"{json.dumps(model)[:500]}; hub log: {self.log_path}"
        )

    async def stop_server(self, user: str, timeout: float = 60) -> None:
        async with self.client(headers={"Authorization": f"token {self.admin_token}"}) as c:
            r = await c.delete(f"/hub/api/users/{user}/server")
        if r.status_code not in (202, 204):
            raise PlatformError(f"stopping {user}'s server answered {r.status_code}: {r.text}")
        await self.wait_for_server(user, ready=False, timeout=timeout)

    async def user_token(self, user: str) -> str:
        """A fresh API token for ``user`` (to call their server through the proxy)."""
        model = await self.api("POST", f"/users/{user}/tokens", {"note": "hubkit-test"})
        return str(model["token"])
