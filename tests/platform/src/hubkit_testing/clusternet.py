"""The cluster network of a platform: kube-proxy (Services), CoreDNS (cluster DNS) and kube-router's
NetworkPolicy controller (enforcement), all real binaries built by ``go/build.sh``.

They run in the host's network namespace, as on a node: kube-proxy programs the ``iptables`` chains
that route ClusterIP and NodePort traffic from the pods on the platform's bridge and from the host;
CoreDNS listens on the bridge's gateway address and is published as the ``kube-dns`` Service
(ClusterIP ``DNS_SERVICE_IP``, an EndpointSlice pointing at the gateway); kube-router (run with
``--run-firewall`` only) turns each NetworkPolicy into per-pod iptables chains and ipsets.
(kube-network-policies, kind's engine, cannot run here: it queues packets with the nftables ``queue``
expression, and this kernel answers ENOENT for it; see docs/platform.md.)

kube-proxy's and kube-router's chains (``KUBE-SERVICES``, ``KUBE-ROUTER-FORWARD`` …) and ipsets have
fixed, machine-wide names, so only one platform at a time may run them: a machine-wide lock is held
from start to stop, and a second platform waits for it. Nothing is left behind: ``stop()`` stops the
processes, runs ``kube-proxy --cleanup``, deletes the remaining ``KUBE-*`` chains and ipsets
(kube-router 2.1's own ``--cleanup-config`` leaves them) and removes the platform's forwarding rule.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import podnet
from .processes import PlatformError, free_port
from .tools import go_component, system_tool

if TYPE_CHECKING:
    from .controlplane import ControlPlane

DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
LOCK_PATH = podnet.LOCK_DIR / "cluster-network.lock"


def corefile(gateway: str, health_port: int, ready_port: int, kubeconfig: Path) -> str:
    """CoreDNS answering for the cluster domain only (there is no upstream: the platform is hermetic)."""
    return f""".:53 {{
    bind {gateway}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} coredns
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


def dns_service(gateway: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, body) of the ``kube-dns`` Service and the EndpointSlice that points it at CoreDNS."""
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    service = {
        "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
        "spec": {"clusterIP": DNS_SERVICE_IP, "ports": [p | {"targetPort": 53} for p in ports]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kube-dns-coredns",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "platform.hubkit.dev",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [gateway], "conditions": {"ready": True}}],
        "ports": ports,
    }
    return [
        ("/api/v1/namespaces/kube-system/services", service),
        ("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", endpoints),
    ]


COREDNS_ROLE = {
    "metadata": {"name": "hubkit:coredns"},
    "rules": [
        {"apiGroups": [""], "resources": ["services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    ],
}
COREDNS_BINDING = {
    "metadata": {"name": "hubkit:coredns"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "hubkit:coredns"},
    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}],
}


def forward_guard(bridge: str) -> list[str]:
    """The FORWARD rule that keeps pod traffic on the bridge: nothing routed from it leaves the machine."""
    return ["FORWARD", "-i", bridge, "!", "-o", bridge, "-j", "DROP", "-m", "comment", "--comment", "hubkit"]


class NetworkLock:
    """The machine-wide lock on kube-proxy's and kube-router's netfilter chains and ipsets."""

    def __init__(self, timeout: float) -> None:
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise PlatformError(
                        f"Another platform has run the cluster network for {timeout:.0f} s ({LOCK_PATH}); "
                        "stop it first."
                    ) from None
                time.sleep(1)

    def release(self) -> None:
        os.close(self.fd)


@dataclass
class ClusterNetwork:
    cp: ControlPlane
    lock: NetworkLock | None = None
    kube_proxy: str = ""
    kube_router: str = ""

    @property
    def net(self) -> podnet.PodNetwork:
        assert self.cp.net is not None
        return self.cp.net

    def start(self, lock_timeout: float = 900) -> None:
        self.kube_proxy = go_component("kube-proxy", "kube-proxy")
        coredns = go_component("coredns", "coredns")
        self.kube_router = go_component("kube-router", "kube-router")
        self.lock = NetworkLock(lock_timeout)
        remove_kube_chains()  # what a crashed run left
        self._remove_guard()
        # Routing between pods through a Service DNAT needs forwarding on the bridge (only there).
        Path(f"/proc/sys/net/ipv4/conf/{self.net.bridge}/forwarding").write_text("1\n")
        podnet.run([system_tool("iptables"), "-w", "-I", *forward_guard(self.net.bridge)])
        self._start_kube_proxy()
        self._start_coredns(coredns)
        self._start_network_policies(self.kube_router)

    def _start_kube_proxy(self) -> None:
        port, metrics = free_port(), free_port()
        proc = self.cp.spawn(
            "kube-proxy",
            [
                self.kube_proxy,
                f"--kubeconfig={self.cp.kubeconfig('kube-proxy')}",
                f"--hostname-override={self.cp.node_name}",
                "--proxy-mode=iptables",
                f"--cluster-cidr={self.net.cidr}",
                # NodePorts answer on the node's address only, never on other addresses of this machine.
                f"--nodeport-addresses={self.net.gateway}/32",
                f"--healthz-bind-address=127.0.0.1:{port}",
                f"--metrics-bind-address=127.0.0.1:{metrics}",
                "--conntrack-max-per-core=0",  # leave the machine's conntrack sysctls alone
                "--iptables-sync-period=5s",
                "--iptables-min-sync-period=0s",
            ],
        )
        proc.wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "healthy")

    def _start_coredns(self, binary: str) -> None:
        for path, body in (
            ("/apis/rbac.authorization.k8s.io/v1/clusterroles", COREDNS_ROLE),
            ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", COREDNS_BINDING),
            *dns_service(str(self.net.gateway)),
        ):
            try:
                self.cp.request("POST", path, body)
            except urllib.error.HTTPError as e:
                raise PlatformError(f"creating {path} for the cluster DNS failed: {e.read().decode()}") from e
        health, ready = free_port(), free_port()
        conf = self.cp.workdir / "Corefile"
        conf.write_text(corefile(str(self.net.gateway), health, ready, self.cp.kubeconfig("coredns")))
        proc = self.cp.spawn("coredns", [binary, "-conf", str(conf)])
        proc.wait_until(lambda: _http_ok(f"http://127.0.0.1:{ready}/ready"), 60, "ready")

    def _start_network_policies(self, binary: str) -> None:
        """kube-router with only its NetworkPolicy controller: per-pod iptables chains and ipsets."""
        health = free_port()
        proc = self.cp.spawn(
            "kube-router",
            [
                binary,
                f"--kubeconfig={self.cp.kubeconfig('kube-router')}",
                f"--hostname-override={self.cp.node_name}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--enable-cni=false",
                "--service-cluster-ip-range=10.96.0.0/16",
                f"--health-port={health}",
                "--metrics-port=0",
                "--iptables-sync-period=5m",
            ],
        )
        proc.wait_until(lambda: _http_ok(f"http://127.0.0.1:{health}/healthz"), 60, "healthy")
        proc.wait_until(lambda: "KUBE-ROUTER-FORWARD" in _iptables_save(), 60, "enforcing")

    def stop(self) -> None:
        """After the processes stopped (ControlPlane.stop): remove kube-proxy's and kube-router's chains
        and ipsets and our rule. Only while holding the lock: otherwise they are another platform's."""
        if self.lock is None:
            return
        if self.kube_proxy:
            podnet.run([self.kube_proxy, "--cleanup"], check=False)
        # kube-router 2.1's --cleanup-config reports success but leaves its policy chains and ipsets
        # (and crashes in its IPVS part), so they are removed here, by their names.
        remove_kube_chains()
        self._remove_guard()
        self.lock.release()
        self.lock = None

    def _remove_guard(self) -> None:
        delete = [system_tool("iptables"), "-w", "-D", *forward_guard(self.net.bridge)]
        while podnet.run(delete, check=False).returncode == 0:
            pass


KUBE_CHAIN = re.compile(r"^:(KUBE-[A-Z0-9-]+) ")


def remove_kube_chains() -> None:
    """Delete every ``KUBE-*`` chain (with the rules that jump to them) and ipset; called with the
    machine-wide lock held, when this platform's kube-proxy and kube-router have stopped."""
    iptables = system_tool("iptables")
    for table in ("filter", "nat", "mangle"):
        saved = podnet.run([system_tool("iptables-save"), "-t", table]).stdout.splitlines()
        chains = [m.group(1) for line in saved if (m := KUBE_CHAIN.match(line))]
        for line in saved:
            words = line.split()
            if line.startswith("-A ") and not words[1].startswith("KUBE-") and "KUBE-" in line:
                podnet.run([iptables, "-w", "-t", table, "-D", *shlex.split(line)[1:]], check=False)
        for chain in chains:
            podnet.run([iptables, "-w", "-t", table, "-F", chain], check=False)
        for chain in chains:
            podnet.run([iptables, "-w", "-t", table, "-X", chain], check=False)
    ipset = system_tool("ipset")
    for name in podnet.run([ipset, "list", "-n"], check=False).stdout.split():
        if name.startswith("KUBE-"):
            podnet.run([ipset, "destroy", name], check=False)


def _iptables_save() -> str:
    return podnet.run([system_tool("iptables-save"), "-t", "filter"]).stdout


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as r:
        return bool(r.status == 200)
