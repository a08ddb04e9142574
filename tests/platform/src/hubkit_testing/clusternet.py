"""The cluster network of a platform: kube-proxy (Services), CoreDNS (cluster DNS) and
kube-network-policies (NetworkPolicy enforcement), all real binaries built by ``go/build.sh``.

They run in the host's network namespace, as on a node: kube-proxy programs the ``iptables`` chains
that route ClusterIP and NodePort traffic from the pods on the platform's bridge and from the host;
CoreDNS listens on the bridge's gateway address and is published as the ``kube-dns`` Service
(ClusterIP ``DNS_SERVICE_IP``, an EndpointSlice pointing at the gateway); kube-network-policies
queues the first packet of each connection of a pod selected by a policy to userspace (nfqueue) and
drops what no rule allows.

kube-proxy's chains (``KUBE-SERVICES`` …) and kube-network-policies' nftables table have fixed,
machine-wide names, so only one platform at a time may run them: a machine-wide lock is held from
start to stop, and a second platform waits for it. Nothing is left behind: ``stop()`` stops the
processes, runs ``kube-proxy --cleanup`` and removes the platform's own forwarding rule.
"""

from __future__ import annotations

import fcntl
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import podnet
from .container_init import ContainerSpec, Mount
from .processes import ManagedProcess, PlatformError, free_port
from .tools import go_component, system_tool

if TYPE_CHECKING:
    from .controlplane import ControlPlane

DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
LOCK_PATH = podnet.LOCK_DIR / "cluster-network.lock"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


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
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]
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
    """The machine-wide lock on kube-proxy's and kube-network-policies' netfilter tables."""

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
    guard: list[str] = field(default_factory=list)
    kube_proxy: str = ""

    @property
    def net(self) -> podnet.PodNetwork:
        assert self.cp.net is not None
        return self.cp.net

    def start(self, lock_timeout: float = 900) -> None:
        self.kube_proxy = go_component("kube-proxy", "kube-proxy")
        coredns = go_component("coredns", "coredns")
        knp = go_component("kube-network-policies", "kube-network-policies")
        self.lock = NetworkLock(lock_timeout)
        # Routing between pods through a Service DNAT needs forwarding on the bridge (only there).
        Path(f"/proc/sys/net/ipv4/conf/{self.net.bridge}/forwarding").write_text("1\n")
        iptables = system_tool("iptables")
        self.guard = forward_guard(self.net.bridge)
        podnet.run([iptables, "-w", "-I", *self.guard])
        self._start_kube_proxy()
        self._start_coredns(coredns)
        self._start_network_policies(knp)

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
        """kube-network-policies reads its credentials the in-cluster way: a private mount namespace
        shows it the service-account directory, and KUBERNETES_SERVICE_* name the API server."""
        assert self.cp.pki is not None
        sa = self.cp.workdir / "kube-network-policies-sa"
        sa.mkdir(exist_ok=True)
        (sa / "token").write_text(self.cp.identities["kube-network-policies"].token)
        (sa / "ca.crt").write_bytes(self.cp.pki.ca_cert.read_bytes())
        (sa / "namespace").write_text("kube-system")
        metrics = free_port()
        spec = ContainerSpec(
            argv=[
                binary,
                f"--hostname-override={self.cp.node_name}",
                "--disable-nri",
                f"--metrics-bind-address=127.0.0.1:{metrics}",
                "--v=2",
            ],
            env={
                "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(self.cp.ports["apiserver"]),
            },
            uid=None,
            gid=None,
            groups=[],
            workdir="/",
            mounts=[Mount(str(sa), SA_DIR, read_only=True)],
        )
        spec_path = self.cp.workdir / "kube-network-policies.json"
        spec_path.write_text(spec.to_json())
        proc = self.cp.spawn(
            "kube-network-policies",
            [
                system_tool("unshare"),
                "--mount",
                "--propagation",
                "private",
                self.cp.python,
                "-m",
                "hubkit_testing.container_init",
                str(spec_path),
            ],
        )
        proc.wait_until(lambda: _http_ok(f"http://127.0.0.1:{metrics}/metrics"), 60, "serving")
        proc.wait_until(lambda: "Syncing nftables rules" in proc.log_path.read_text(), 60, "syncing")

    def stop(self) -> None:
        """After the processes stopped (ControlPlane.stop): remove kube-proxy's chains and our rule."""
        if self.kube_proxy:
            podnet.run([self.kube_proxy, "--cleanup"], check=False)
        if self.guard:
            podnet.run([system_tool("iptables"), "-w", "-D", *self.guard], check=False)
            self.guard = []
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as r:
        return bool(r.status == 200)
