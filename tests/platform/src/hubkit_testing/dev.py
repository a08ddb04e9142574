"""``make dev``: HubKit on the hermetic platform at http://127.0.0.1:8000 until Ctrl-C.

Starts the control plane (etcd, API server, controller manager, scheduler, kwok nodes, the process
kubelet), a namespace ``hubkit-dev``, the LMS simulator at http://127.0.0.1:8001 and a JupyterHub
(LTI 1.1 + 1.3 launches and a local admin login) whose HubKitSpawner spawns real single-user servers.
Everything is torn down on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

from .controlplane import ControlPlane
from .dev_spawner import DevSpawnerSetup, create_course_storage, dev_spawner_config, start_registry
from .hub import Hub, HubOptions
from .image_run import ImageRunError, parse_image_map
from .kubespawner_config import kubespawner_config
from .lms_simulator import (
    DEV_CONSUMER_KEY,
    DEV_CONSUMER_SECRET,
    LMSSimulator,
    dev_hub_config,
    dev_hub_env,
    start_dev_lms,
    write_tool_key,
)
from .processes import PlatformError, port_is_open
from .registry import RegistryServer

DEV_CONFIG = """
c.JupyterHub.spawner_class = "hubkit"
# The local admin login carries no HubKit identity block: run such users as a fixed uid.
c.HubKitSpawner.identity_fallback = "fixed"
"""


def banner(hub: Hub, cp: ControlPlane, namespace: str, lms: LMSSimulator, registry: RegistryServer) -> str:
    return f"""
HubKit is running.

  Open      {hub.url}
  Students  {lms.url}  (LMS simulator: launch as student or instructor of a sample course,
            LTI 1.1 or 1.3; LTI 1.1 consumer key "{DEV_CONSUMER_KEY}", secret "{DEV_CONSUMER_SECRET}",
            launch URL {hub.url}/hub/lti/launch)
  Admin     {hub.url}/hub/local/login  (user "admin", password "hubkit")
  Servers   JupyterLab, run as real processes in pods of namespace {namespace!r}; students and
            instructors see different menus (instructors also get a GPU profile on kwok-gpu-1)
  Images    the menu lists the tags of {registry.url}/v2/jupyter/datascience/tags/list
  kubectl   KUBECONFIG={cp.admin_kubeconfig}  (API server {cp.server})
  Logs      {cp.workdir / "logs"}, {hub.log_path}

Press Ctrl-C to stop everything.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000, help="public port of the hub (default 8000)")
    parser.add_argument("--lms-port", type=int, default=8001, help="port of the LMS simulator (default 8001)")
    parser.add_argument("--workdir", type=Path, help="state directory (default: a new temporary one)")
    parser.add_argument(
        "--image-map",
        action="append",
        default=[],
        metavar="NAME=LOCAL_IMAGE",
        help="run pods' containers of image NAME (with or without its tag) from the locally built "
        "LOCAL_IMAGE (images/build-local.sh) with podman; repeat for several images",
    )
    args = parser.parse_args()
    try:
        image_map = parse_image_map(args.image_map)
    except ImageRunError as e:
        parser.error(str(e))
    for port, flag in ((args.port, "--port"), (args.lms_port, "--lms-port")):
        if port_is_open("127.0.0.1", port):
            sys.exit(f"Port {port} is already in use; stop what uses it or pass {flag}.")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hubkit-dev-"))

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # Ctrl-C reaches every process of the terminal's process group: the ones started here run in their
    # own sessions and are stopped below, in order, however far the start got.

    print(f"Starting the Kubernetes control plane in {workdir} ...", flush=True)
    cp = ControlPlane(workdir / "k8s", image_map=image_map)
    hub: Hub | None = None
    lms: LMSSimulator | None = None
    registry: RegistryServer | None = None
    try:
        cp.start()
        lms = start_dev_lms(hub_url=f"http://127.0.0.1:{args.port}", port=args.lms_port)
        namespace = cp.create_namespace("hubkit-dev")
        registry = start_registry(workdir / "registry")
        create_course_storage(cp, namespace, workdir / "courses")
        setup = DevSpawnerSetup(registry, workdir / "courses", namespace)
        if stop.is_set():
            return
        print("Starting JupyterHub ...", flush=True)
        config = kubespawner_config(cp, namespace, "hubkit") + DEV_CONFIG + dev_spawner_config(setup)
        hub = Hub(
            HubOptions(
                workdir=workdir / "hub",
                config=config + dev_hub_config(lms, write_tool_key(workdir / "lti-tool.pem")),
                hub_ip=cp.gateway,
                port=args.port,
                env={"KUBECONFIG": str(cp.admin_kubeconfig), **dev_hub_env()},
            )
        ).start()
        print(banner(hub, cp, namespace, lms, registry), flush=True)
        stop.wait()
    except PlatformError as e:
        print(f"make dev could not start: {e}", file=sys.stderr)
        raise SystemExit(1) from e
    finally:
        print("Stopping ...", flush=True)
        if hub is not None:
            hub.stop()
        if lms is not None:
            lms.stop()
        if registry is not None:
            registry.stop()
        cp.stop()
        print("Stopped; nothing is left running.", flush=True)


if __name__ == "__main__":
    main()
