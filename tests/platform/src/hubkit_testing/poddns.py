"""A pod's ``/etc/resolv.conf``, as the kubelet writes it for each ``dnsPolicy``.

``ClusterFirst`` (the default, and ``ClusterFirstWithHostNet``) points at the cluster DNS Service with
the ``<namespace>.svc.<domain> svc.<domain> <domain>`` search path and ``ndots:5``; ``None`` uses only
the pod's ``dnsConfig``; ``Default`` keeps the node's own resolver (nothing is mounted). Without a
cluster DNS (the fast platform) ``ClusterFirst`` falls back to the node's resolver, as a kubelet does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_SEARCHES = 32  # the kubelet's limit (and glibc's since 2.26)


@dataclass(frozen=True)
class ClusterDNS:
    server: str
    domain: str = "cluster.local"


def resolv_conf(pod: dict[str, Any], dns: ClusterDNS | None) -> str | None:
    """The pod's resolv.conf text, or None when the node's own resolver applies."""
    spec = pod["spec"]
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    config = spec.get("dnsConfig") or {}
    if policy == "Default" or (policy != "None" and dns is None):
        return None
    if policy == "None":
        servers: list[str] = []
        searches: list[str] = []
        options: list[dict[str, Any]] = []
    else:
        assert dns is not None
        ns = pod["metadata"]["namespace"]
        servers = [dns.server]
        searches = [f"{ns}.svc.{dns.domain}", f"svc.{dns.domain}", dns.domain]
        options = [{"name": "ndots", "value": "5"}]
    servers += list(config.get("nameservers") or [])
    searches += [s for s in config.get("searches") or [] if s not in searches]
    merged: dict[str, str | None] = {o["name"]: o.get("value") for o in options}
    merged.update({o["name"]: o.get("value") for o in config.get("options") or []})
    lines = [f"nameserver {s}" for s in servers[:3]]
    if searches:
        lines.append("search " + " ".join(searches[:MAX_SEARCHES]))
    if merged:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in merged.items()))
    return "\n".join(lines) + "\n"
