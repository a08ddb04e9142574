"""Image mode: a container whose image was built here (``localhost/hubkit-local/*``, or a name the
image map sends there) runs from that image with podman, inside the pod's own network namespace.

This module is pure: it decides which image a container runs and builds the ``podman run`` command
line from the container spec (command/args, env file, user and groups, read-only root, capabilities,
volumes as bind mounts). ``pods.py`` runs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .container_init import Mount

LOCAL_REPOSITORY = "localhost/hubkit-local/"

# runc, not crun (see images/build-local.sh); ulimits podman may set in a user namespace; and no
# HEALTHCHECK: Kubernetes ignores an image's own, it has probes.
PODMAN_RUN = (
    "podman",
    "run",
    "--rm",
    "--runtime=runc",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
    "--no-healthcheck",
    "--pull=never",
    "--log-driver=none",  # stdout and stderr go to the kubelet's log file, through `podman run`
)


class ImageRunError(ValueError):
    """A container spec image mode cannot honour (one plain sentence)."""


def local_image(image: str, image_map: dict[str, str]) -> str | None:
    """The locally built image a container runs, or None (process mode).

    ``image_map`` sends an image name (with or without its tag, e.g. ``quay.io/jupyterhub/k8s-hub``)
    to a local reference; an image already under ``localhost/hubkit-local/`` runs as it is.
    """
    if image in image_map:
        return image_map[image]
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    if repository in image_map:
        return image_map[repository]
    if image.startswith(LOCAL_REPOSITORY):
        return image
    return None


def parse_image_map(items: list[str]) -> dict[str, str]:
    """``NAME=LOCAL_REF`` pairs (a CLI flag each) as a map."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, ref = item.partition("=")
        if not sep or not name or not ref:
            raise ImageRunError(f"image map entry {item!r} is not NAME=LOCAL_IMAGE.")
        out[name] = ref
    return out


@dataclass(frozen=True)
class ImageRun:
    """Everything one ``podman run`` of a container needs (the kubelet resolved the rest)."""

    name: str  # podman's container name
    image: str  # the local reference
    netns_path: str
    hostname: str
    env_file: str
    container: dict[str, Any]
    pod_security: dict[str, Any]
    mounts: list[Mount] = field(default_factory=list)


ALLOWED_SECURITY = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "capabilities",
    "seccompProfile",
    "privileged",
}


def _security_args(run: ImageRun) -> list[str]:
    sc = run.container.get("securityContext") or {}
    pod_sc = run.pod_security
    unknown = set(sc) - ALLOWED_SECURITY
    if unknown:
        raise ImageRunError(
            f"securityContext fields {sorted(unknown)} of container {run.container['name']} are not "
            "supported in image mode."
        )
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile")) or {"type": "RuntimeDefault"}
    if seccomp.get("type") not in ("RuntimeDefault", "Unconfined"):
        raise ImageRunError(f"seccompProfile {seccomp.get('type')} is not supported in image mode.")
    args: list[str] = []
    if seccomp.get("type") == "Unconfined":
        args.append("--security-opt=seccomp=unconfined")
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    if uid is not None:
        args.append(f"--user={uid}" + (f":{gid}" if gid is not None else ""))
    elif gid is not None:
        raise ImageRunError(
            f"container {run.container['name']} sets runAsGroup without runAsUser; set both in image mode."
        )
    groups = [*(pod_sc.get("supplementalGroups") or [])]
    if pod_sc.get("fsGroup") is not None:
        groups.append(pod_sc["fsGroup"])
    args += [f"--group-add={g}" for g in dict.fromkeys(groups)]
    if sc.get("privileged"):
        args.append("--privileged")
    if sc.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    if sc.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    caps = sc.get("capabilities") or {}
    args += [f"--cap-drop={c.lower()}" for c in caps.get("drop") or []]
    args += [f"--cap-add={c.lower()}" for c in caps.get("add") or []]
    return args


def podman_argv(run: ImageRun) -> list[str]:
    """The ``podman run`` command line of one container (its stdout/stderr are the container's)."""
    c = run.container
    argv = [
        *PODMAN_RUN,
        f"--name={run.name}",
        f"--network=ns:{run.netns_path}",
        f"--hostname={run.hostname}",
        f"--env-file={run.env_file}",
        *_security_args(run),
    ]
    if c.get("workingDir"):
        argv.append(f"--workdir={c['workingDir']}")
    for m in run.mounts:
        argv.append(f"--volume={m.source}:{m.target}" + (":ro" if m.read_only else ""))
    command, args = list(c.get("command") or []), list(c.get("args") or [])
    if command:  # replaces the image's ENTRYPOINT and, as in Kubernetes, its CMD
        argv.append("--entrypoint=" + json.dumps(command))
    argv.append(run.image)
    return argv + args


def env_file(env: dict[str, str]) -> str:
    """podman's ``--env-file`` text; a value with a newline cannot be written there."""
    for name, value in env.items():
        if "\n" in value:
            raise ImageRunError(f"env {name} holds a newline, which podman's env file cannot carry.")
    return "".join(f"{k}={v}\n" for k, v in env.items())
