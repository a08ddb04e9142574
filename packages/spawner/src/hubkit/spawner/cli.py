"""``hubkit-spawner``: ``render`` (a dry run of a spawn) and ``provision-server`` (the home provisioner).

``render`` loads an ordinary jupyterhub_config.py, builds the spawner for one user and runs the same
spawn-time code as a real spawn (``load_user_options`` then ``spawn_objects``), printing every object the
spawn would create as YAML documents. It never contacts a cluster. A refused request prints its
one-sentence reason on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

if TYPE_CHECKING:
    from ._spawner import HubKitSpawner

OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: render, cluster: {server: "https://render.invalid"}}]
users: [{name: render, user: {token: render-never-connects}}]
contexts: [{name: render, context: {cluster: render, user: render}}]
current-context: render
"""


@dataclass
class _Group:
    name: str


@dataclass
class RenderUser:
    """What the spawner reads of a JupyterHub user."""

    name: str
    groups: list[_Group] = field(default_factory=list)
    id: int = 1
    admin: bool = False

    @property
    def url(self) -> str:
        return f"/user/{self.name}/"

    @property
    def escaped_name(self) -> str:
        return self.name


@dataclass
class RenderHub:
    api_url: str = "http://hub:8081/hub/api"
    public_host: str = ""
    url: str = "http://hub:8081/hub/"
    base_url: str = "/hub/"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (passwd and group files) as literal blocks, as an admin would write them."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _options(profile: str | None, pairs: Sequence[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    if profile:
        options["profile"] = profile
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option needs NAME=VALUE, got {pair!r}")
        options[name] = value
    return options


async def render(args: argparse.Namespace, config: Config) -> int:
    from kubernetes_asyncio.client import ApiClient
    from tornado import web

    spawner = offline_spawner(config, args.user, args.group)
    spawner.user_options = _options(args.profile, args.option)
    try:
        auth_state = json.loads(args.auth_state) if args.auth_state else None
    except json.JSONDecodeError as e:
        print(f"--auth-state is not valid JSON: {e}", file=sys.stderr)
        return 2
    await spawner.run_auth_state_hook(auth_state)
    try:
        await spawner.load_user_options()
    except web.HTTPError as e:
        print(getattr(e, "jupyterhub_message", e.log_message), file=sys.stderr)
        return 2
    objects = await spawner.spawn_objects()
    async with ApiClient() as client:
        docs = [client.sanitize_for_serialization(obj) for obj in objects]
    for doc in docs:
        doc.setdefault("apiVersion", "v1")
        doc.setdefault("kind", "Pod" if "containers" in doc.get("spec", {}) else doc.get("kind"))
        doc["metadata"].setdefault("namespace", spawner.namespace)
    sys.stdout.write(yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False))
    return 0


@contextlib.contextmanager
def offline_kubeconfig() -> Iterator[None]:
    """While active, constructing a spawner loads a placeholder kubeconfig naming an unreachable server.

    KubeSpawner loads a kubeconfig when constructed and kubernetes_asyncio read $KUBECONFIG at import, so
    its default location is pointed at the placeholder: render never talks to a cluster, whatever the
    admin's environment.
    """
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(OFFLINE_KUBECONFIG)
        previous = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        in_cluster = os.environ.pop("KUBERNETES_SERVICE_HOST", None)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
        try:
            yield
        finally:
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = previous
            if in_cluster is not None:
                os.environ["KUBERNETES_SERVICE_HOST"] = in_cluster


def offline_spawner(config: Config, user: str, groups: Sequence[str]) -> HubKitSpawner:
    """A HubKitSpawner for ``user`` built from ``config`` (call inside :func:`offline_kubeconfig`)."""
    from ._spawner import HubKitSpawner

    render_user = RenderUser(user, [_Group(g) for g in groups])
    spawner = HubKitSpawner(config=config, user=render_user, hub=RenderHub())
    spawner.image_menu_publish_interval = 0  # render never writes to a cluster
    spawner.nfs_keepalive_url = ""  # nor reads a service's health
    return spawner


def _run_render(args: argparse.Namespace) -> int:
    with offline_kubeconfig():
        config = PyFileConfigLoader(str(Path(args.config).resolve())).load_config()
        return asyncio.run(render(args, config))


def _run_provisioner(args: argparse.Namespace) -> int:
    from tornado.ioloop import IOLoop

    from .provisioner import make_app

    token = Path(args.token_file).read_text().strip()
    if len(token) < 16:
        raise SystemExit("the provisioner token must be at least 16 characters")
    host, _, port = args.listen.rpartition(":")
    app = make_app(Path(args.root), Path(args.skeleton) if args.skeleton else None, token)
    app.listen(int(port), address=host or "127.0.0.1")
    print(f"hubkit home provisioner serving {args.root} on {args.listen}", flush=True)
    IOLoop.current().start()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hubkit-spawner", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="print every object a spawn would create, as YAML")
    r.add_argument("--config", required=True, help="a jupyterhub_config.py")
    r.add_argument("--user", required=True, help="the JupyterHub username")
    r.add_argument("--group", action="append", default=[], help="a JupyterHub group of the user (repeat)")
    r.add_argument("--auth-state", default="", help="the user's auth_state as JSON")
    r.add_argument("--profile", default=None, help="the profile slug (user_options['profile'])")
    r.add_argument("--option", action="append", default=[], help="NAME=VALUE of user_options (repeat)")
    p = sub.add_parser("provision-server", help="serve home provisioning next to the home export (as root)")
    p.add_argument("--root", required=True, help="the directory holding the homes")
    p.add_argument("--skeleton", default="", help="a directory whose files every new home gets")
    p.add_argument("--listen", default="127.0.0.1:8765", help="HOST:PORT")
    p.add_argument("--token-file", required=True, help="file holding the bearer token")
    args = parser.parse_args(argv)
    if args.command == "render":
        return _run_render(args)
    return _run_provisioner(args)


def entry() -> None:
    raise SystemExit(main())


__all__ = ["main", "render"]
