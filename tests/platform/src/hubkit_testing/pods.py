"""Running one pod as local processes: its sandbox directory, volumes, network and containers.

The kubelet (``kubelet.py``) decides when; this module does. A pod's containers run as processes in
the pod's own network namespace (see ``podnet.py``) and a private mount namespace each, as the pod's
user, from the host's filesystem (see ``images.py`` for what an image contributes). A container whose
image was built here runs from that image with podman instead, in the same network namespace and
with the same volumes (image mode, see ``image_run.py``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import podnet
from .container_init import ContainerSpec, Mount
from .image_run import ImageRun, ImageRunError, env_file, local_image, podman_argv
from .images import SYSTEM_PATH, ImageProfile, image_profile
from .poddns import ClusterDNS, resolv_conf
from .podstatus import ContainerState, now
from .processes import signal_group


class PodAPI(Protocol):
    """What a pod needs from the API server, as the node's own identity."""

    async def read_object(self, kind: str, namespace: str, name: str) -> dict[str, bytes]:
        """A ConfigMap's or Secret's keys (``kind`` starts with configMap or secret)."""

    async def service_account_token(self, pod: dict[str, Any], audience: str | None, seconds: int) -> str:
        """A token bound to ``pod`` from the TokenRequest API."""

    async def volume_path(self, namespace: str, claim: str) -> Path:
        """The local directory behind a bound PersistentVolumeClaim (hostPath or local PV)."""


class PodStartError(Exception):
    """The pod cannot start; ``reason`` is a Kubernetes-style reason, the message a plain sentence."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes, unknown stay."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, text)


@dataclass
class PodRuntime:
    """The local state of one pod on this node."""

    pod: dict[str, Any]
    net: podnet.PodNetwork
    address: ipaddress.IPv4Address
    state_dir: Path
    api: PodAPI
    started_at: str = field(default_factory=now)
    containers: list[ContainerState] = field(default_factory=list)
    processes: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    netns: str = ""
    dns: ClusterDNS | None = None
    image_map: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, Path] = field(default_factory=dict)
    # container name -> its current podman container (image mode only)
    podman_names: dict[str, str] = field(default_factory=dict)
    launches: int = 0

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def ns(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def sandbox(self) -> Path:
        m = self.pod["metadata"]
        return self.state_dir / "pods" / f"{m['namespace']}_{m['name']}_{m['uid'][:8]}"

    # --- start -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the sandbox, network and volumes, run init containers, then start the containers."""
        spec = self.pod["spec"]
        self.containers = [ContainerState(c["name"], c.get("image", "")) for c in spec["containers"]]
        self.sandbox.mkdir(parents=True, exist_ok=True)
        volumes = self.volumes = await self._materialize_volumes()
        self.netns = self.net.netns_name(self.uid[:8])
        veth = f"hk{self.net.slot}v{int(self.address) & 0xFFFF:x}"
        await asyncio.to_thread(podnet.add_pod, self.net, self.netns, veth, self.address)
        for init in spec.get("initContainers", []):
            proc = await self._launch(init, volumes)
            code = await proc.wait()
            if code != 0:
                raise PodStartError(
                    "InitContainerFailed",
                    f"init container {init['name']} exited with {code}; see {self._log(init['name'])}",
                )
        for container in spec["containers"]:
            await self.launch(container)

    async def launch(self, container: dict[str, Any]) -> None:
        """Start (or restart) one of the pod's containers and record it in its state."""
        state = next(c for c in self.containers if c.name == container["name"])
        proc = await self._launch(container, self.volumes)
        self.processes[container["name"]] = proc
        state.pid, state.started_at = proc.pid, now()
        podman = self.podman_names.get(container["name"])
        state.runtime_id = f"podman://{podman}" if podman else None

    def _log(self, container: str) -> Path:
        """Container logs outlive the sandbox, so a failed test can still be read afterwards."""
        logs = self.state_dir / "logs" / self.sandbox.name
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{container}.log"

    async def _launch(
        self, container: dict[str, Any], volumes: dict[str, Path]
    ) -> asyncio.subprocess.Process:
        image = local_image(container.get("image", ""), self.image_map)
        if image is not None:
            argv = await self._image_argv(container, image, volumes)
        else:
            argv = await self._process_argv(container, volumes)
        log = self._log(container["name"]).open("ab")
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()

    async def _image_argv(self, container: dict[str, Any], image: str, volumes: dict[str, Path]) -> list[str]:
        """``podman run`` of ``image`` in the pod's network namespace, with the pod's volumes and env."""
        name = container["name"]
        if not await _succeeds("podman", "image", "exists", image):
            raise PodStartError(
                "ErrImageNeverPull",
                f"image {image} (for container {name}) is not in the local container storage; "
                "build it with images/build-local.sh.",
            )
        pod_sc = self.pod["spec"].get("securityContext") or {}
        sc = container.get("securityContext") or {}
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            if uid is None:
                user = (
                    await _output("podman", "image", "inspect", "--format", "{{.Config.User}}", image)
                ).strip()
                uid = 0 if user.split(":")[0] in ("", "0", "root") else user
            if uid in (0, "0"):
                raise PodStartError(
                    "CreateContainerConfigError",
                    f"container {name} has runAsNonRoot and its image runs as root (uid 0).",
                )
        env = await self._env(container, None, image_mode=True)
        env_path = self.sandbox / f"{name}.env"
        env_path.touch(mode=0o600)
        mounts = [self._mount(m, volumes) for m in container.get("volumeMounts") or []]
        resolv = resolv_conf(self.pod, self.dns)
        if resolv is not None and all(m.target != "/etc/resolv.conf" for m in mounts):
            path = self.sandbox / "resolv.conf"
            path.write_text(resolv)
            path.chmod(0o644)
            mounts.append(Mount(str(path), "/etc/resolv.conf", read_only=True))
        self.launches += 1
        podman_name = f"hk{self.net.slot}-{self.uid[:8]}-{name}-{self.launches}"
        try:
            env_path.write_text(env_file(env))
            argv = podman_argv(
                ImageRun(
                    name=podman_name,
                    image=image,
                    netns_path=f"/run/netns/{self.netns}",
                    hostname=self.pod["metadata"]["name"],
                    env_file=str(env_path),
                    container=container,
                    pod_security=pod_sc,
                    mounts=mounts,
                )
            )
        except ImageRunError as e:
            raise PodStartError("CreateContainerConfigError", str(e)) from e
        self.podman_names[name] = podman_name
        return argv

    async def _process_argv(self, container: dict[str, Any], volumes: dict[str, Path]) -> list[str]:
        spec = await self._container_spec(container, volumes)
        spec_path = self.sandbox / f"{container['name']}.json"
        spec_path.write_text(spec.to_json())
        return [
            "ip",
            "netns",
            "exec",
            self.netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-m",
            "hubkit_testing.container_init",
            str(spec_path),
        ]

    async def _container_spec(self, container: dict[str, Any], volumes: dict[str, Path]) -> ContainerSpec:
        pod_sc = self.pod["spec"].get("securityContext") or {}
        sc = container.get("securityContext") or {}
        image = container.get("image", "")
        profile = image_profile(image)
        command = list(container.get("command") or [])
        args = list(container.get("args") or [])
        if not command:
            if profile is None:
                raise PodStartError(
                    "CreateContainerConfigError",
                    f"image {image!r} is unknown to the process kubelet; give container "
                    f"{container['name']} an explicit command.",
                )
            command = list(profile.command) if not args else []
        uid = sc.get("runAsUser", pod_sc.get("runAsUser", profile.uid if profile else 0))
        gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", profile.gid if profile else 0))
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and uid == 0:
            raise PodStartError(
                "CreateContainerConfigError",
                f"container {container['name']} has runAsNonRoot and its image runs as root (uid 0).",
            )
        groups = list(pod_sc.get("supplementalGroups") or [])
        if pod_sc.get("fsGroup") is not None:
            groups.append(pod_sc["fsGroup"])
        env = await self._env(container, profile)
        mounts = [self._mount(m, volumes) for m in container.get("volumeMounts") or []]
        resolv = resolv_conf(self.pod, self.dns)
        if resolv is not None and all(m.target != "/etc/resolv.conf" for m in mounts):
            path = self.sandbox / "resolv.conf"
            path.write_text(resolv)
            path.chmod(0o644)
            mounts.append(Mount(str(path), "/etc/resolv.conf", read_only=True))
        if profile and profile.home != "/" and all(m.target != profile.home for m in mounts):
            mounts.insert(0, Mount(self._home_dir(profile.home, uid, gid), profile.home))
        return ContainerSpec(
            argv=[expand(a, env) for a in command + args],
            env=env,
            uid=uid,
            gid=gid,
            groups=groups,
            workdir=container.get("workingDir") or (profile.workdir if profile else "/"),
            mounts=mounts,
            protected=sorted({sys.prefix, sys.base_prefix, *os.environ.get("PATH", "").split(":")} - {""}),
        )

    def _home_dir(self, home: str, uid: int, gid: int) -> str:
        """The image's home directory, writable by the container's user (the image's layer)."""
        path = self.sandbox / "home"
        path.mkdir(exist_ok=True)
        os.chown(path, uid, gid)
        return str(path)

    def _mount(self, mount: dict[str, Any], volumes: dict[str, Path]) -> Mount:
        name = mount["name"]
        if name not in volumes:
            raise PodStartError(
                "CreateContainerConfigError", f"volumeMount {name} names no volume of the pod."
            )
        source = volumes[name]
        if mount.get("subPath"):
            parent, source = source, source / mount["subPath"]
            if not source.exists():
                # As the kubelet does: a missing subPath is created with its parent's mode.
                source.mkdir(parents=True)
                source.chmod(parent.stat().st_mode & 0o7777)
        return Mount(str(source), mount["mountPath"], bool(mount.get("readOnly")))

    async def _env(
        self, container: dict[str, Any], profile: ImageProfile | None, image_mode: bool = False
    ) -> dict[str, str]:
        # In image mode PATH and HOME come from the image's config (podman sets them).
        env = {"HOSTNAME": self.pod["metadata"]["name"]}
        if not image_mode:
            env["PATH"] = profile.path() if profile else ":".join(SYSTEM_PATH)
            env["HOME"] = profile.home if profile else "/root"
        for source in container.get("envFrom") or []:
            for kind in ("configMapRef", "secretRef"):
                if kind in source:
                    data = await self.api.read_object(kind, self.ns, source[kind]["name"])
                    prefix = source.get("prefix", "")
                    env.update({prefix + k: v.decode() for k, v in data.items()})
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = expand(var["value"] or "", env)
            elif "valueFrom" in var:
                env[var["name"]] = await self._env_from(var["valueFrom"])
        return env

    async def _env_from(self, ref: dict[str, Any]) -> str:
        if "fieldRef" in ref:
            fields: dict[str, str] = {
                "metadata.name": self.pod["metadata"]["name"],
                "metadata.namespace": self.ns,
                "metadata.uid": self.uid,
                "spec.nodeName": self.pod["spec"].get("nodeName", ""),
                "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", ""),
                "status.podIP": str(self.address),
                "status.hostIP": str(self.net.gateway),
            }
            return str(fields.get(ref["fieldRef"]["fieldPath"], ""))
        for kind in ("configMapKeyRef", "secretKeyRef"):
            if kind in ref:
                data = await self.api.read_object(kind, self.ns, ref[kind]["name"])
                return data[ref[kind]["key"]].decode()
        raise PodStartError(
            "CreateContainerConfigError", f"env valueFrom {sorted(ref)} is not supported here."
        )

    async def _materialize_volumes(self) -> dict[str, Path]:
        """Lay out each pod volume as a directory (or a host path) the containers bind-mount."""
        fs_group = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        out: dict[str, Path] = {}
        for vol in self.pod["spec"].get("volumes") or []:
            name, path = vol["name"], self.sandbox / "volumes" / vol["name"]
            if "emptyDir" in vol:
                path.mkdir(parents=True, exist_ok=True)
                if fs_group is not None:
                    os.chown(path, -1, fs_group)
                path.chmod(0o2777 if fs_group is None else 0o2775)
            elif "hostPath" in vol:
                path = Path(vol["hostPath"]["path"])
            elif "persistentVolumeClaim" in vol:
                path = await self.api.volume_path(self.ns, vol["persistentVolumeClaim"]["claimName"])
            elif "configMap" in vol or "secret" in vol:
                kind = "configMap" if "configMap" in vol else "secret"
                ref = vol[kind]
                data = await self.api.read_object(kind, self.ns, ref.get("name") or ref.get("secretName"))
                self._write_keys(path, data, ref.get("items"), ref.get("defaultMode", 0o644), fs_group)
            elif "projected" in vol:
                mode = vol["projected"].get("defaultMode", 0o644)
                for source in vol["projected"].get("sources") or []:
                    data, items = await self._projected_source(source)
                    self._write_keys(path, data, items, mode, fs_group)
            else:
                kinds = sorted(set(vol) - {"name"})
                raise PodStartError(
                    "UnsupportedVolume", f"volume {name} of type {kinds} is not supported here."
                )
            out[name] = path
        return out

    async def _projected_source(
        self, source: dict[str, Any]
    ) -> tuple[dict[str, bytes], list[dict[str, Any]] | None]:
        """One source of a projected volume as (data, items)."""
        if "serviceAccountToken" in source:
            sat = source["serviceAccountToken"]
            token = await self.api.service_account_token(
                self.pod, sat.get("audience"), int(sat.get("expirationSeconds", 3600))
            )
            return {"token": token.encode()}, [{"key": "token", "path": sat["path"]}]
        if "downwardAPI" in source:
            items = source["downwardAPI"].get("items") or []
            data = {i["path"]: (await self._env_from({"fieldRef": i["fieldRef"]})).encode() for i in items}
            return data, None
        for kind in ("configMap", "secret"):
            if kind in source:
                ref = source[kind]
                try:
                    data = await self.api.read_object(kind, self.ns, ref["name"])
                except PodStartError:
                    if ref.get("optional"):
                        return {}, None
                    raise
                return data, ref.get("items")
        raise PodStartError("UnsupportedVolume", f"projected source {sorted(source)} is not supported here.")

    @staticmethod
    def _write_keys(
        path: Path, data: dict[str, bytes], items: list[dict[str, Any]] | None, mode: int, gid: int | None
    ) -> None:
        path.mkdir(parents=True, exist_ok=True)
        chosen = (
            [(i["key"], i["path"], i.get("mode", mode)) for i in items]
            if items
            else [(k, k, mode) for k in data]
        )
        for key, rel, file_mode in chosen:
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[key])
            target.chmod(file_mode)
            if gid is not None:
                os.chown(target, -1, gid)

    # --- stop --------------------------------------------------------------------------------

    async def kill_container(self, name: str, grace_seconds: float) -> None:
        """Stop one container as the kubelet does: SIGTERM, SIGKILL after the grace period."""
        proc = self.processes.get(name)
        if proc is None:
            return
        podman = self.podman_names.get(name)
        if podman is not None:
            # podman stops the container itself (SIGTERM, SIGKILL after the grace period); `podman run`
            # then exits with the container's code.
            await _succeeds("podman", "rm", "--force", f"--time={max(int(grace_seconds), 0)}", podman)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), timeout=10)
        signal_group(proc.pid, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), timeout=max(grace_seconds, 0.5))
        signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()

    async def exec_in(self, name: str, argv: list[str], timeout: float) -> int | None:
        """Run ``argv`` inside a running container (an exec probe); its exit code, None on timeout."""
        proc = self.processes.get(name)
        if proc is None or proc.returncode is not None:
            return None
        podman = self.podman_names.get(name)
        if podman is not None:
            command = ["podman", "exec", podman, *argv]
        else:
            # The container's own network and mount namespaces, as its user, with its environment.
            spec = ContainerSpec.from_json((self.sandbox / f"{name}.json").read_text())
            identity = [] if spec.uid is None else [f"--setuid={spec.uid}", f"--setgid={spec.gid or 0}"]
            env = [f"{k}={v}" for k, v in spec.env.items()]
            command = ["nsenter", f"--target={proc.pid}", "--mount", "--net", *identity, "--", "env", "-i"]
            command += [*env, *argv]
        child = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            return await asyncio.wait_for(child.wait(), timeout=timeout)
        except TimeoutError:
            signal_group(child.pid, signal.SIGKILL)
            await child.wait()
            return None

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM every container, SIGKILL after the grace period, then remove network and sandbox."""
        await asyncio.gather(*(self.kill_container(n, grace_seconds) for n in list(self.processes)))
        if self.netns:
            await asyncio.to_thread(podnet.remove_pod, self.netns)
        await asyncio.to_thread(shutil.rmtree, self.sandbox, True)


async def _succeeds(*argv: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await proc.wait() == 0


async def _output(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await proc.communicate()
    return out.decode()


def decode_data(obj: dict[str, Any], secret: bool) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys as bytes."""
    out = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    for k, v in (obj.get("data") or {}).items():
        out[k] = base64.b64decode(v) if secret else str(v).encode()
    return out
