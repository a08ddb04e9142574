"""Entry point run inside a pod's network and mount namespaces: mount volumes, drop to the pod's
identity, exec the container's command.

The process kubelet starts ``ip netns exec <pod> unshare -m --propagation private python -m
hubkit_testing.container_init <spec.json>``. Bind mounts made here are private to the container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the in-namespace side needs; written by the kubelet as JSON."""

    argv: list[str]
    env: dict[str, str]
    uid: int | None
    gid: int | None
    groups: list[int]
    workdir: str
    mounts: list[Mount] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        data = self.__dict__ | {"mounts": [m.__dict__ for m in self.mounts]}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> ContainerSpec:
        data = json.loads(text)
        data["mounts"] = [Mount(**m) for m in data["mounts"]]
        return cls(**data)


def _is_protected(path: Path, protected: list[str]) -> bool:
    """Whether hiding ``path`` under a tmpfs would hide the host files the container runs from."""
    if str(path) in {"/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/proc", "/sys", "/dev"}:
        return True
    return any(p == str(path) or p.startswith(str(path).rstrip("/") + "/") for p in protected)


def _prepare_target(target: Path, is_file: bool, protected: list[str], mounted: list[Path]) -> None:
    """Make ``target`` exist inside this mount namespace without touching the host's filesystem.

    Inside a volume mounted earlier, missing directories are created in that volume, as runc does
    for nested mounts. Elsewhere, a tmpfs goes over the deepest existing ancestor (as an image's own
    directories would shadow the host's), unless that ancestor holds what we run from.
    """
    if target.exists():
        return
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    in_volume = any(ancestor == m or m in ancestor.parents for m in mounted)
    if not in_volume:
        if _is_protected(ancestor, protected):
            raise SystemExit(
                f"container_init: mountPath {target} needs {ancestor} to be hidden, "
                "which would hide the host files the container runs from; choose another mountPath."
            )
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(ancestor)], check=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_file:
        target.touch()
    else:
        target.mkdir(exist_ok=True)


def apply_mounts(spec: ContainerSpec) -> None:
    """Bind-mount every volume, shallowest mountPath first (as runc orders them)."""
    mounted: list[Path] = []
    for mount in sorted(spec.mounts, key=lambda m: len(Path(m.target).parts)):
        source, target = Path(mount.source), Path(mount.target)
        _prepare_target(target, source.is_file(), spec.protected, mounted)
        subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
        if mount.read_only:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        mounted.append(target)


def drop_identity(spec: ContainerSpec) -> None:
    if os.geteuid() != 0 or spec.uid is None:
        return
    gid = spec.gid if spec.gid is not None else 0
    os.setgroups(sorted(set(spec.groups)))
    os.setgid(gid)
    os.setuid(spec.uid)


def main() -> None:
    spec = ContainerSpec.from_json(Path(sys.argv[1]).read_text())
    apply_mounts(spec)
    drop_identity(spec)
    try:
        os.chdir(spec.workdir)
    except OSError:
        os.chdir("/")
    os.execvpe(spec.argv[0], spec.argv, spec.env)


if __name__ == "__main__":
    main()
