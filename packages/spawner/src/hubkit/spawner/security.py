"""Make a pod run as the user's identity and pass the "restricted" Pod Security Standard (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio.client import V1Pod

from .identity import Identity


@dataclass(frozen=True)
class SecuritySettings:
    identity: Identity
    fs_group: int | None


def _as_dict(context: Any) -> dict[str, Any]:
    """A security context (a V1 model or kubespawner's camelCase dict) as a camelCase dict."""
    if context is None:
        return {}
    if isinstance(context, dict):
        return dict(context)
    return {
        context.attribute_map[attr]: getattr(context, attr)
        for attr in context.openapi_types
        if getattr(context, attr) is not None
    }


def container_security_context(identity: Identity, current: Any) -> dict[str, Any]:
    return _as_dict(current) | {
        "runAsUser": identity.uid,
        "runAsGroup": identity.gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(settings: SecuritySettings, current: Any) -> dict[str, Any]:
    ident = settings.identity
    context = _as_dict(current) | {
        "runAsUser": ident.uid,
        "runAsGroup": ident.gid,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    extra = sorted(set(ident.posix_groups.values()) - {ident.gid})
    context.pop("supplementalGroups", None)
    if extra:
        context["supplementalGroups"] = extra
    context.pop("fsGroup", None)
    if settings.fs_group is not None:
        context["fsGroup"] = settings.fs_group
    return context


def apply_restricted_identity(pod: V1Pod, settings: SecuritySettings) -> V1Pod:
    """Set the pod's and every container's security context to the user's ids, restricted-compliant.

    Containers (including init and extra containers) always run as the user: HubKit never runs a
    container of a user's pod as root.
    """
    # The client serializes camelCase dicts as it does models (kubespawner relies on the same).
    pod.spec.security_context = pod_security_context(settings, pod.spec.security_context)  # type: ignore[assignment]
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        context = container_security_context(settings.identity, container.security_context)
        container.security_context = context  # type: ignore[assignment]
    return pod
