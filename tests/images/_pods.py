"""Run a container of a pod the chart renders with podman, on the image built by images/build-local.sh, the
way a kubelet would run it: its command and args, user and group, capabilities, no-new-privileges and
read-only root filesystem, environment (Secret references resolved from the rendered objects), and its
volumes (ConfigMaps written out, emptyDirs as tmpfs, claims as host directories the test provides).

Anything in the spec this cannot honour fails loudly rather than being dropped."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hubkit_testing.tools import REPO_ROOT

# runc, not crun: see images/build-local.sh. The explicit ulimits lower podman's defaults, which it is not
# allowed to raise in a user namespace (as CI runs): "error setting rlimit type 7: operation not permitted".
PODMAN = (
    "podman",
    "run",
    "--runtime=runc",
    "--ulimit=nofile=1024:1024",
    "--ulimit=nproc=1024:1024",
    # Kubernetes ignores an image's HEALTHCHECK; without systemd podman cannot schedule one anyway.
    "--no-healthcheck",
)


def run(*argv: str | Path, timeout: float = 120) -> str:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def build_local_image(name: str) -> str:
    """Build (or reuse the cached build of) ``images/<name>`` with images/build-local.sh; its reference."""
    out = run("bash", REPO_ROOT / "images" / "build-local.sh", name, timeout=900)
    ref = out.strip().splitlines()[-1]
    assert ref.startswith(f"localhost/hubkit-local/{name}:"), out
    return ref


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(
        f"no {kind} {name} rendered: {[(o['kind'], o['metadata']['name']) for o in objects]}"
    )


@dataclass
class PodRun:
    """How to run one rendered Deployment's containers. ``claims`` maps PVC names to host directories;
    ``publish`` maps container ports to loopback ports (ignored with ``host_network``)."""

    objects: list[dict[str, Any]]
    deployment: str
    image: str
    workdir: Path
    claims: dict[str, Path] = field(default_factory=dict)
    publish: dict[int, int] = field(default_factory=dict)
    host_network: bool = False

    @property
    def pod(self) -> dict[str, Any]:
        spec: dict[str, Any] = find(self.objects, "Deployment", self.deployment)["spec"]["template"]["spec"]
        return spec

    def container(self, name: str, init: bool = False) -> dict[str, Any]:
        for c in self.pod.get("initContainers" if init else "containers", []):
            if c["name"] == name:
                return dict(c)
        raise AssertionError(f"{self.deployment} has no {'init ' if init else ''}container {name}")

    def argv(self, container: dict[str, Any], *extra: str) -> list[str]:
        argv = [*PODMAN, *extra, *self._security(container), *self._volumes(container), *self._env(container)]
        if self.host_network:
            argv.append("--network=host")
        else:
            for port in container.get("ports", []):
                assert port.get("protocol", "TCP") == "TCP"
                host = self.publish.get(port["containerPort"])
                if host:
                    argv.append(f"--publish=127.0.0.1:{host}:{port['containerPort']}")
        if "command" in container:  # replaces the image's ENTRYPOINT (and its CMD), as in Kubernetes
            argv.append("--entrypoint=" + json.dumps(container["command"]))
        argv.append(self.image)
        if "command" in container and "args" not in container:
            return argv
        return argv + list(container.get("args", []))

    def run(self, name: str, init: bool = False, timeout: float = 120) -> str:
        """Run a container to completion (an init container, or a one-off command)."""
        return run(*self.argv(self.container(name, init), "--rm"), timeout=timeout)

    @contextmanager
    def started(self, name: str) -> Iterator[str]:
        """Start a long-running container; yields its podman name, removes it afterwards."""
        podman_name = f"hubkit-test-{self.deployment}-{name}-{self.workdir.name}"[:60]
        run(*self.argv(self.container(name), "--detach", f"--name={podman_name}"))
        try:
            yield podman_name
        finally:
            subprocess.run(
                ["podman", "rm", "--force", "--time=5", podman_name], capture_output=True, timeout=60
            )

    def _security(self, container: dict[str, Any]) -> list[str]:
        pod_ctx = self.pod.get("securityContext", {})
        ctx = {**pod_ctx, **container.get("securityContext", {})}
        unknown = set(ctx) - {
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "fsGroup",
            "seccompProfile",
            "allowPrivilegeEscalation",
            "readOnlyRootFilesystem",
            "capabilities",
        }
        assert not unknown, f"securityContext fields this runner does not honour: {unknown}"
        # podman's default seccomp profile is what RuntimeDefault means under CRI-O/containerd.
        assert ctx.get("seccompProfile", {"type": "RuntimeDefault"})["type"] == "RuntimeDefault"
        args = []
        if "runAsUser" in ctx:
            args.append(
                f"--user={ctx['runAsUser']}" + (f":{ctx['runAsGroup']}" if "runAsGroup" in ctx else "")
            )
        if "fsGroup" in ctx:
            args.append(f"--group-add={ctx['fsGroup']}")
        if ctx.get("allowPrivilegeEscalation") is False:
            args.append("--security-opt=no-new-privileges")
        if ctx.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        caps = ctx.get("capabilities", {})
        if [c.upper() for c in caps.get("drop", [])] == ["ALL"]:
            args.append("--cap-drop=all")
        else:
            assert not caps.get("drop"), f"only drop: [ALL] is supported, not {caps['drop']}"
        args += [f"--cap-add={c}" for c in caps.get("add", [])]
        return args

    def _volumes(self, container: dict[str, Any]) -> list[str]:
        volumes = {v["name"]: v for v in self.pod.get("volumes", [])}
        args = []
        for mount in container.get("volumeMounts", []):
            assert "subPath" not in mount, "subPath is not supported"
            volume = volumes[mount["name"]]
            ro = ":ro" if mount.get("readOnly") else ""
            if "configMap" in volume:
                data = find(self.objects, "ConfigMap", volume["configMap"]["name"]).get("data", {})
                source = self.workdir / "configmaps" / mount["name"]
                source.mkdir(parents=True, exist_ok=True)
                for key, text in data.items():
                    (source / key).write_text(text)
                    (source / key).chmod(0o644)  # the kubelet's default mode
                args.append(f"--volume={source}:{mount['mountPath']}{ro}")
            elif "emptyDir" in volume:
                assert volume["emptyDir"].get("medium", "") == "", "only disk-backed emptyDirs are supported"
                source = self.workdir / "emptydirs" / mount["name"]  # a fresh directory, mode 0777
                source.mkdir(parents=True, exist_ok=True)
                source.chmod(0o777)
                args.append(f"--volume={source}:{mount['mountPath']}{ro}")
            elif "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                assert claim in self.claims, f"no host directory given for the claim {claim}"
                source = self.claims[claim]
                args.append(f"--volume={source}:{mount['mountPath']}{ro}")
            else:
                raise AssertionError(f"volume type of {volume} is not supported")
        return args

    def _env(self, container: dict[str, Any]) -> list[str]:
        args = []
        for var in container.get("env", []):
            if "value" in var:
                value = var["value"]
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                data = find(self.objects, "Secret", ref["name"])
                value = base64.b64decode(data["data"][ref["key"]]).decode()
            args.append(f"--env={var['name']}={value}")
        return args

    def secret(self, name: str, key: str) -> str:
        return base64.b64decode(find(self.objects, "Secret", name)["data"][key]).decode()
