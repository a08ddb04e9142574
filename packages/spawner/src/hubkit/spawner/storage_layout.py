"""The declarative storage layout: home, course directories and scratch as pod volumes (pure).

Every directory a user gets is named by their identity's ``home`` (derived from the immutable identity
key), never by the display username, so a username-scheme change can never move anyone's files. See
docs/spawner.md ("Storage layout") for the configuration format.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client import (
    V1NFSVolumeSource,
    V1PersistentVolumeClaimVolumeSource,
    V1Volume,
    V1VolumeMount,
)

from .exceptions import ConfigError
from .identity import Identity, safe_name
from .profiles import groups_allow

SOURCE_KEYS = {"nfs", "pvc"}


@dataclass(frozen=True)
class Source:
    """Where a tree lives: an NFS export (``server`` + ``path``) or a PVC (of an NFS PV)."""

    nfs_server: str | None = None
    nfs_path: str | None = None
    claim: str | None = None

    def volume(self, name: str, sub: str, read_only: bool) -> tuple[V1Volume, str | None]:
        """A volume for directory ``sub`` of this tree, and the subPath to mount (PVC only)."""
        if self.claim:
            return V1Volume(
                name=name,
                persistent_volume_claim=V1PersistentVolumeClaimVolumeSource(
                    claim_name=self.claim, read_only=read_only
                ),
            ), sub or None
        path = posixpath.join(self.nfs_path or "/", sub) if sub else self.nfs_path
        return V1Volume(
            name=name, nfs=V1NFSVolumeSource(server=self.nfs_server, path=path, read_only=read_only)
        ), None


@dataclass(frozen=True)
class Tree:
    """One entry of the layout."""

    name: str
    source: Source
    mount_path: str
    sub_path: str = ""
    read_groups: tuple[str, ...] | None = None
    write_groups: tuple[str, ...] | None = ()


@dataclass(frozen=True)
class StorageLayout:
    home: Tree | None = None
    courses: tuple[Tree, ...] = ()
    scratch: Tree | None = None


def _source(entry: dict[str, Any], where: str) -> Source:
    kinds = SOURCE_KEYS & set(entry)
    if len(kinds) != 1:
        raise ConfigError(f"{where}: give exactly one of 'nfs' or 'pvc'")
    if "pvc" in entry:
        claim = entry["pvc"]
        if not isinstance(claim, str) or not claim:
            raise ConfigError(f"{where}: 'pvc' must be a claim name")
        return Source(claim=claim)
    nfs = entry["nfs"]
    if not isinstance(nfs, dict) or set(nfs) != {"server", "path"}:
        raise ConfigError(f"{where}: 'nfs' must be {{'server': ..., 'path': ...}}")
    if not str(nfs["path"]).startswith("/"):
        raise ConfigError(f"{where}: the NFS path must be absolute")
    return Source(nfs_server=str(nfs["server"]), nfs_path=str(nfs["path"]))


def _groups(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: groups must be a list of names or globs")
    return tuple(value)


def _tree(entry: Any, where: str, allowed: set[str]) -> Tree:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a dict")
    unknown = set(entry) - allowed - SOURCE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    mount = entry.get("mount_path")
    if not isinstance(mount, str) or not mount.startswith("/"):
        raise ConfigError(f"{where}: 'mount_path' must be an absolute path")
    sub = str(entry.get("sub_path", ""))
    if sub.startswith("/") or ".." in sub.split("/"):
        raise ConfigError(f"{where}: 'sub_path' must be relative and stay inside the tree")
    return Tree(
        name=str(entry.get("name", where)),
        source=_source(entry, where),
        mount_path=mount,
        sub_path=sub,
        read_groups=_groups(entry.get("read_groups"), where),
        write_groups=_groups(entry.get("write_groups", []), where),
    )


def parse_layout(config: dict[str, Any]) -> StorageLayout:
    """Validate the ``storage_layout`` trait's value (unknown keys are errors)."""
    unknown = set(config) - {"home", "courses", "scratch"}
    if unknown:
        raise ConfigError(f"storage_layout: unknown keys {sorted(unknown)}")
    courses = config.get("courses", [])
    if not isinstance(courses, list):
        raise ConfigError("storage_layout.courses must be a list")
    course_keys = {"name", "mount_path", "sub_path", "read_groups", "write_groups"}
    parsed = tuple(_tree(c, f"storage_layout.courses[{i}]", course_keys) for i, c in enumerate(courses))
    for i, c in enumerate(courses):
        if not isinstance(c.get("name"), str) or not c["name"]:
            raise ConfigError(f"storage_layout.courses[{i}]: 'name' is required")
    home = config.get("home")
    scratch = config.get("scratch")
    return StorageLayout(
        home=_tree(home, "storage_layout.home", {"mount_path"}) if home else None,
        courses=parsed,
        scratch=_tree(scratch, "storage_layout.scratch", {"mount_path", "read_groups"}) if scratch else None,
    )


def build_storage(
    layout: StorageLayout, identity: Identity, groups: Sequence[str]
) -> tuple[list[V1Volume], list[V1VolumeMount]]:
    """The volumes and mounts the user gets from the layout."""
    volumes: list[V1Volume] = []
    mounts: list[V1VolumeMount] = []

    def add(name: str, tree: Tree, sub: str, read_only: bool) -> None:
        volume, sub_path = tree.source.volume(name, sub, read_only)
        volumes.append(volume)
        mounts.append(
            V1VolumeMount(name=name, mount_path=tree.mount_path, sub_path=sub_path, read_only=read_only)
        )

    if layout.home:
        add("hubkit-home", layout.home, posixpath.join(layout.home.sub_path, identity.home).strip("/"), False)
    for course in layout.courses:
        writable = groups_allow(list(course.write_groups or ()), groups)
        readable = writable or groups_allow(
            list(course.read_groups) if course.read_groups is not None else None, groups
        )
        if readable:
            add(f"course-{safe_name(course.name)}", course, course.sub_path, not writable)
    if layout.scratch and groups_allow(
        list(layout.scratch.read_groups) if layout.scratch.read_groups is not None else None, groups
    ):
        add(
            "hubkit-scratch",
            layout.scratch,
            posixpath.join(layout.scratch.sub_path, identity.home).strip("/"),
            False,
        )
    return volumes, mounts
