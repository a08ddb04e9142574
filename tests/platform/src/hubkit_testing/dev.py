"""``make dev``: HubKit on the hermetic platform at http://127.0.0.1:8000 until Ctrl-C.

Starts the control plane (etcd, API server, controller manager, scheduler, kwok nodes, the process
kubelet), a namespace ``hubkit-dev`` and a JupyterHub whose HubKitSpawner spawns real single-user
servers there. Everything is torn down on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .controlplane import ControlPlane
from .hub import Hub, HubOptions
from .kubespawner_config import kubespawner_config
from .processes import PlatformError, port_is_open

DEV_CONFIG = """
# make dev: log in with any username and the password "hubkit"; "admin" is an admin.
c.Authenticator.admin_users = {"admin"}
c.JupyterHub.spawner_class = "hubkit"
# The local password login carries no HubKit identity block: run such users as a fixed uid.
c.HubKitSpawner.identity_fallback = "fixed"
"""


def banner(hub: Hub, cp: ControlPlane, namespace: str) -> str:
    return f"""
HubKit is running.

  Open      {hub.url}
  Log in    any username, password "hubkit" (user "admin" is a hub admin)
  Servers   run as real processes in pods of namespace {namespace!r}
  kubectl   KUBECONFIG={cp.admin_kubeconfig}  (API server {cp.server})
  Logs      {cp.workdir / "logs"}, {hub.log_path}

Press Ctrl-C to stop everything.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000, help="public port of the hub (default 8000)")
    parser.add_argument("--workdir", type=Path, help="state directory (default: a new temporary one)")
    args = parser.parse_args()
    if port_is_open("127.0.0.1", args.port):
        sys.exit(f"Port {args.port} is already in use; stop what uses it or pass --port.")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hubkit-dev-"))

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    print(f"Starting the Kubernetes control plane in {workdir} ...", flush=True)
    cp = ControlPlane(workdir / "k8s")
    hub: Hub | None = None
    try:
        cp.start()
        namespace = cp.create_namespace("hubkit-dev")
        print("Starting JupyterHub ...", flush=True)
        hub = Hub(
            HubOptions(
                workdir=workdir / "hub",
                config=kubespawner_config(cp, namespace, "hubkit") + DEV_CONFIG,
                hub_ip=cp.gateway,
                port=args.port,
                env={"KUBECONFIG": str(cp.admin_kubeconfig)},
            )
        ).start()
        print(banner(hub, cp, namespace), flush=True)
        stop.wait()
    except PlatformError as e:
        print(f"make dev could not start: {e}", file=sys.stderr)
        raise SystemExit(1) from e
    finally:
        print("Stopping ...", flush=True)
        if hub is not None:
            hub.stop()
        cp.stop()
        print("Stopped; nothing is left running.", flush=True)


if __name__ == "__main__":
    main()
