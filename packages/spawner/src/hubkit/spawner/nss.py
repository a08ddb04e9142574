"""The per-user passwd/group ConfigMap mounted over /etc/passwd and /etc/group (pure builders)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kubernetes_asyncio.client import (
    V1ConfigMap,
    V1ConfigMapVolumeSource,
    V1ObjectMeta,
    V1Volume,
    V1VolumeMount,
)

from .identity import Identity

NSS_VOLUME = "hubkit-nss"


@dataclass(frozen=True)
class NssInput:
    """Everything the passwd/group files are made from."""

    name: str
    namespace: str
    username: str
    identity: Identity
    home_path: str
    shell: str
    base_passwd: Sequence[str]
    base_group: Sequence[str]
    labels: dict[str, str]


def _clean(field: str) -> str:
    """passwd fields cannot contain ':' or newlines."""
    return field.replace(":", "_").replace("\n", " ")


def passwd_text(spec: NssInput) -> str:
    ident = spec.identity
    # The base image's entries stay, except any that would shadow the user's name or uid.
    lines = [
        line
        for line in spec.base_passwd
        if line.split(":")[0] != spec.username and line.split(":")[2:3] != [str(ident.uid)]
    ]
    entry = f"{spec.username}:x:{ident.uid}:{ident.gid}:{_clean(ident.key)}:{spec.home_path}:{spec.shell}"
    return "\n".join([*lines, entry]) + "\n"


def group_text(spec: NssInput) -> str:
    ident = spec.identity
    taken_gids = {str(g) for g in (ident.gid, *ident.posix_groups.values())}
    taken_names = {spec.username, *ident.posix_groups}
    lines = [
        line
        for line in spec.base_group
        if line.split(":")[0] not in taken_names
        and line.split(":")[2:3] != []
        and line.split(":")[2] not in taken_gids
    ]
    lines.append(f"{spec.username}:x:{ident.gid}:")
    for name, gid in sorted(ident.posix_groups.items()):
        if gid != ident.gid:
            lines.append(f"{name}:x:{gid}:{spec.username}")
    return "\n".join(lines) + "\n"


def build_nss_configmap(spec: NssInput) -> V1ConfigMap:
    return V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=V1ObjectMeta(name=spec.name, namespace=spec.namespace, labels=dict(spec.labels)),
        data={"passwd": passwd_text(spec), "group": group_text(spec)},
        immutable=True,
    )


def nss_volume(configmap_name: str) -> V1Volume:
    return V1Volume(
        name=NSS_VOLUME, config_map=V1ConfigMapVolumeSource(name=configmap_name, default_mode=0o444)
    )


def nss_mounts() -> list[V1VolumeMount]:
    return [
        V1VolumeMount(name=NSS_VOLUME, mount_path="/etc/passwd", sub_path="passwd", read_only=True),
        V1VolumeMount(name=NSS_VOLUME, mount_path="/etc/group", sub_path="group", read_only=True),
    ]
