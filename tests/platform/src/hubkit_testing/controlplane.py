"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok for simulated nodes and the process kubelet for nodes that run real processes.

``ControlPlane(workdir).start()`` brings it up in ~10 s; ``stop()`` leaves no process, port, network
namespace or bridge behind.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import podnet
from .certs import PKI, make_pki
from .clusternet import DNS_SERVICE_IP, ClusterNetwork
from .images import SINGLEUSER_ENV_VAR
from .nodes import NodeSpec, default_nodes, kwok_node_manifest
from .processes import ManagedProcess, PlatformError, free_port
from .tools import go_tool, singleuser_env

KUBERNETES_VERSION = "v1.35.4"
PROCESS_NODE = "process-node-1"


@dataclass
class Identity:
    """A token-authenticated user of the API server (the static token file)."""

    name: str
    groups: tuple[str, ...]
    token: str = field(default_factory=lambda: secrets.token_hex(16))


@dataclass
class ControlPlane:
    workdir: Path
    nodes: list[NodeSpec] = field(default_factory=default_nodes)
    # kube-proxy, CoreDNS and kube-router's policy controller (clusternet.py): opt-in, they cost start-up time
    # and hold a machine-wide lock.
    cluster_network: bool = False
    # Image names the process kubelet runs from locally built images with podman (image mode); images
    # under localhost/hubkit-local/ always do. See image_run.py.
    image_map: dict[str, str] = field(default_factory=dict)
    network: ClusterNetwork | None = None
    processes: list[ManagedProcess] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    pki: PKI | None = None
    slot_lock: podnet.SlotLock | None = None
    net: podnet.PodNetwork | None = None

    # --- addresses and credentials -------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.kubeconfig("admin")

    @property
    def node_name(self) -> str:
        """The process node (the node kube-proxy and the policy controller serve)."""
        return PROCESS_NODE

    @property
    def gateway(self) -> str:
        """The host's address on the pod network: pods reach the hub here."""
        assert self.net is not None, "the control plane is not started"
        return str(self.net.gateway)

    def kubeconfig(self, who: str, namespace: str = "default") -> Path:
        """Write (once) and return a kubeconfig for one identity whose context uses ``namespace``."""
        path = self.workdir / (
            f"{who}.kubeconfig" if namespace == "default" else f"{who}-{namespace}.kubeconfig"
        )
        if not path.exists():
            assert self.pki is not None
            ident = self.identities[who]
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "hubkit",
                        "cluster": {"server": self.server, "certificate-authority": str(self.pki.ca_cert)},
                    }
                ],
                "users": [{"name": who, "user": {"token": ident.token}}],
                "contexts": [
                    {"name": who, "context": {"cluster": "hubkit", "user": who, "namespace": namespace}}
                ],
                "current-context": who,
            }
            path.write_text(yaml.safe_dump(config))
            path.chmod(0o600)
        return path

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> ControlPlane:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        t0 = time.monotonic()
        self.slot_lock = podnet.SlotLock()
        self.net = podnet.network_for_slot(self.slot_lock.slot)
        podnet.create_network(self.net)
        self.pki = make_pki(
            self.workdir / "pki",
            ["127.0.0.1", "10.96.0.1"],
            ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        )
        for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok"):
            self.ports[name] = free_port()
        self.identities = {
            "admin": Identity("hubkit-admin", ("system:masters",)),
            "controller-manager": Identity("system:kube-controller-manager", ()),
            "scheduler": Identity("system:kube-scheduler", ()),
            "kwok": Identity("kwok-controller", ("system:masters",)),
            "kubelet": Identity(f"system:node:{PROCESS_NODE}", ("system:nodes",)),
            "kube-proxy": Identity("system:kube-proxy", ()),  # bound to system:node-proxier by default
            "coredns": Identity("system:coredns", ()),
            "kube-router": Identity("hubkit:kube-router", ("system:masters",)),
        }
        tokens = [f'{i.token},{i.name},{i.name},"{",".join(i.groups)}"' for i in self.identities.values()]
        (self.workdir / "tokens.csv").write_text("\n".join(tokens) + "\n")

        self._start_etcd()
        self._start_apiserver()
        self._start_controllers()
        self._start_nodes()
        if self.cluster_network:
            self.network = ClusterNetwork(self)
            self.network.start()
        self.wait_for_default_service_account("default")
        (self.workdir / "startup-seconds").write_text(f"{time.monotonic() - t0:.2f}\n")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.workdir / "logs" / f"{name}.log", env=env).start()
        self.processes.append(proc)
        return proc

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        """Start one more component of this platform (stopped by ``stop()``, newest first)."""
        return self._spawn(name, argv, env)

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        proc = self._spawn(
            "etcd",
            [
                go_tool("etcd"),
                "--name=hubkit",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=hubkit={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        proc.wait_until(
            lambda: b'"true"' in urllib.request.urlopen(f"{client}/health", timeout=1).read(), 30, "serving"
        )

    def _start_apiserver(self) -> None:
        assert self.pki is not None
        p = self.pki
        proc = self._spawn(
            "kube-apiserver",
            [
                go_tool("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={p.serving_cert}",
                f"--tls-private-key-file={p.serving_key}",
                f"--client-ca-file={p.ca_cert}",
                f"--token-auth-file={self.workdir / 'tokens.csv'}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",  # on top of the default set (incl. PodSecurity)
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p.sa_pub}",
                f"--service-account-signing-key-file={p.sa_key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                # A loopback address cannot be the endpoint of the `kubernetes` Service.
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                f"--cert-dir={self.workdir / 'pki'}",
            ],
        )
        proc.wait_until(lambda: self._get("/readyz") == "ok", 90, "ready")

    def _start_controllers(self) -> None:
        assert self.pki is not None
        kcm = self.kubeconfig("controller-manager")
        self._spawn(
            "kube-controller-manager",
            [
                go_tool("kube-controller-manager"),
                f"--kubeconfig={kcm}",
                f"--authentication-kubeconfig={kcm}",
                f"--authorization-kubeconfig={kcm}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['controller-manager']}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--cluster-signing-cert-file={self.pki.ca_cert}",
                f"--cluster-signing-key-file={self.pki.ca_key}",
                "--controllers=*",
                "--profiling=false",
            ],
        )
        sched = self.kubeconfig("scheduler")
        self._spawn(
            "kube-scheduler",
            [
                go_tool("kube-scheduler"),
                f"--kubeconfig={sched}",
                f"--authentication-kubeconfig={sched}",
                f"--authorization-kubeconfig={sched}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports['scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
            ],
        )

    def _start_nodes(self) -> None:
        assert self.net is not None
        assert self.pki is not None
        self._spawn(
            "kwok",
            [
                go_tool("kwok"),
                f"--kubeconfig={self.kubeconfig('kwok')}",
                f"--config={go_tool('kwok-stages.yaml')}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-label-selector=type=kwok",
                f"--cidr={self.net.kwok_pod_range}",
                f"--node-ip={self.net.gateway}",
                f"--server-address=127.0.0.1:{self.ports['kwok']}",
            ],
        )
        token_file = self.workdir / "kubelet.token"
        token_file.write_text(self.identities["kubelet"].token)
        token_file.chmod(0o600)
        self._spawn(
            "process-kubelet",
            [
                sys.executable,
                "-m",
                "hubkit_testing.kubelet",
                f"--server={self.server}",
                f"--token-file={token_file}",
                f"--ca-file={self.pki.ca_cert}",
                f"--node={PROCESS_NODE}",
                f"--state-dir={self.workdir / 'kubelet'}",
                f"--slot={self.net.slot}",
                f"--version={KUBERNETES_VERSION}",
                *([f"--cluster-dns={DNS_SERVICE_IP}"] if self.cluster_network else []),
                *(f"--image-map={name}={ref}" for name, ref in sorted(self.image_map.items())),
            ],
            env=dict(os.environ) | {SINGLEUSER_ENV_VAR: str(singleuser_env())},
        )
        for spec in self.nodes:
            self.request("POST", "/api/v1/nodes", kwok_node_manifest(spec))
        self.wait_for_nodes_ready([PROCESS_NODE, *(n.name for n in self.nodes)])

    def add_kwok_node(self, spec: NodeSpec) -> None:
        """Add one simulated node and wait until kwok reports it Ready."""
        self.request("POST", "/api/v1/nodes", kwok_node_manifest(spec))
        self.wait_for_nodes_ready([spec.name])

    def wait_for_nodes_ready(self, names: list[str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = {
                n["metadata"]["name"]
                for n in self.request("GET", "/api/v1/nodes")["items"]
                if any(
                    c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])
                )
            }
            if ready >= set(names):
                return
            for proc in self.processes:
                if not proc.running():
                    raise PlatformError(f"{proc.name} exited while nodes registered; see {proc.log_path}")
            time.sleep(0.2)
        raise PlatformError(
            f"nodes {sorted(set(names) - ready)} did not become Ready in 60 s; see {self.workdir}/logs"
        )

    def stop(self) -> None:
        """Stop every component (newest first) and remove the pod network."""
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        if self.network is not None:
            self.network.stop()
            self.network = None
        if self.net is not None:
            podnet.remove_network(self.net)
        if self.slot_lock is not None:
            self.slot_lock.release()
            self.slot_lock = None

    # --- API helpers (synchronous: used by fixtures and setup, not by code under test) ---------

    def _ssl(self) -> ssl.SSLContext:
        assert self.pki is not None
        return ssl.create_default_context(cafile=str(self.pki.ca_cert))

    def _get(self, path: str) -> str:
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.identities['admin'].token}"}
        )
        with urllib.request.urlopen(req, context=self._ssl(), timeout=5) as r:
            return str(r.read().decode())

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        """One admin API call; raises urllib.error.HTTPError with the server's answer on failure."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.identities['admin'].token}",
                "Content-Type": content_type,
            },
        )
        with urllib.request.urlopen(req, context=self._ssl(), timeout=30) as r:
            return dict(json.loads(r.read() or b"{}"))

    def wait_for_default_service_account(self, namespace: str, timeout: float = 30) -> None:
        """Pods need the namespace's `default` ServiceAccount and `kube-root-ca.crt` ConfigMap (their
        token volume projects it), both of which the controller manager creates."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.request("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
                self.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/kube-root-ca.crt")
                return
            except OSError:
                time.sleep(0.1)
        raise PlatformError(f"namespace {namespace} got no default ServiceAccount in {timeout:.0f} s")

    def wait_for_pod_gone(self, namespace: str, name: str, timeout: float = 60) -> bool:
        """Whether the pod disappeared from the API within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
            except urllib.error.HTTPError as e:
                if e.code == 404:
                    return True
                raise
            time.sleep(0.2)
        return False

    def wait_for_pod_phase(
        self, namespace: str, name: str, phases: set[str], timeout: float = 60
    ) -> dict[str, Any]:
        """The pod once its phase is one of ``phases``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
            if pod.get("status", {}).get("phase") in phases:
                return pod
            time.sleep(0.2)
        raise PlatformError(
            f"pod {namespace}/{name} did not reach {sorted(phases)} in {timeout:.0f} s: {pod.get('status')}"
        )

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        self.request("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
        self.wait_for_default_service_account(name)
        return name

    def delete_namespace(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/namespaces/{name}")

    def bind_host_path_claim(self, namespace: str, claim: str, path: Path) -> str:
        """A ReadWriteMany PVC ``claim`` bound to a hostPath PersistentVolume of ``path`` (a directory);
        returns the PV's name, ``<claim>-<namespace>``."""
        pv = f"{claim}-{namespace}"
        self.request(
            "POST",
            "/api/v1/persistentvolumes",
            {
                "metadata": {"name": pv},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "",
                    "hostPath": {"path": str(path), "type": "Directory"},
                    "claimRef": {"namespace": namespace, "name": claim},
                },
            },
        )
        self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
            {
                "metadata": {"name": claim},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "",
                    "volumeName": pv,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        return pv
