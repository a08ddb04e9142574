"""The process kubelet: a node agent that runs the pods bound to its node as local processes.

It registers its Node, renews the node Lease, watches pods with ``spec.nodeName=<node>`` and keeps
their status in step with the processes: Running and Ready once every container has started,
Failed (or Succeeded) with the exit code when one exits, and gone after a deletion once the
processes have stopped. Run ``hubkit-process-kubelet --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import logging
import os
import platform
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import podnet
from .image_run import ImageRunError, parse_image_map
from .kubeapi import KubeAPI, KubeError
from .poddns import ClusterDNS
from .pods import PodRuntime, PodStartError, decode_data
from .podstatus import pod_phase, pod_status
from .probes import ProbeConfigError
from .supervisor import ContainerSupervisor

log = logging.getLogger("process-kubelet")
PROCESS_NODE_LABEL = "hubkit.dev/kubelet"


@dataclass(frozen=True)
class KubeletConfig:
    server: str
    token: str
    ca_file: str
    node: str
    state_dir: Path
    slot: int
    cpu: str
    memory: str
    pods: int
    version: str
    cluster_dns: ClusterDNS | None = None
    # Image names (with or without tag) run from a locally built image (see image_run.py).
    image_map: dict[str, str] = field(default_factory=dict)


def node_manifest(cfg: KubeletConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": cfg.node,
            "labels": {
                "kubernetes.io/hostname": cfg.node,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                PROCESS_NODE_LABEL: "process",
            },
        },
    }


def node_status(cfg: KubeletConfig, address: str) -> dict[str, Any]:
    t = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    resources = {"cpu": cfg.cpu, "memory": cfg.memory, "pods": str(cfg.pods), "ephemeral-storage": "100Gi"}

    def cond(kind: str, status: str, reason: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "lastHeartbeatTime": t,
            "lastTransitionTime": t,
        }

    return {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            cond("Ready", "True", "KubeletReady"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
        ],
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": cfg.node}],
        "nodeInfo": {
            "kubeletVersion": cfg.version,
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "process://hubkit",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "kernelVersion": platform.release(),
            "osImage": "HubKit process kubelet",
            "machineID": cfg.node,
            "systemUUID": cfg.node,
            "bootID": str(os.getpid()),
        },
    }


class Kubelet:
    def __init__(self, cfg: KubeletConfig) -> None:
        self.cfg = cfg
        self.net = podnet.network_for_slot(cfg.slot)
        self.api = KubeAPI(cfg.server, cfg.token, cfg.ca_file)
        self.runtimes: dict[str, PodRuntime] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.used_ips: set[ipaddress.IPv4Address] = set()

    # --- node ----------------------------------------------------------------------------------

    async def register(self) -> None:
        try:
            await self.api.request("POST", "/api/v1/nodes", node_manifest(self.cfg))
        except KubeError as e:
            if e.status != 409:
                raise
        await self.api.merge_patch(
            f"/api/v1/nodes/{self.cfg.node}/status", {"status": node_status(self.cfg, str(self.net.gateway))}
        )

    async def heartbeat(self) -> None:
        """Renew the node Lease every 10 s and the node's conditions every 30 s."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.cfg.node}"
        beats = 0
        while True:
            renew = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lease = {
                "spec": {"holderIdentity": self.cfg.node, "leaseDurationSeconds": 40, "renewTime": renew}
            }
            try:
                try:
                    await self.api.merge_patch(path, lease)
                except KubeError as e:
                    if e.status != 404:
                        raise
                    body = {"metadata": {"name": self.cfg.node}} | lease
                    await self.api.request("POST", path.rsplit("/", 1)[0], body)
                if beats % 3 == 0:
                    status = node_status(self.cfg, str(self.net.gateway))
                    await self.api.merge_patch(f"/api/v1/nodes/{self.cfg.node}/status", {"status": status})
            except Exception:
                log.exception("heartbeat for node %s failed; retrying", self.cfg.node)
            beats += 1
            await asyncio.sleep(10)

    # --- pods ----------------------------------------------------------------------------------

    async def _as_node(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """A request the Node authorizer may refuse for a moment: its graph learns of a freshly bound
        pod's references asynchronously, so a 403 is retried for a few seconds, as the kubelet does."""
        for attempt in range(40):
            try:
                return await self.api.request(method, path, body)
            except KubeError as e:
                if e.status != 403 or attempt == 39:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    async def read_object(self, kind: str, namespace: str, name: str) -> dict[str, bytes]:
        secret = kind.startswith("secret")
        plural = "secrets" if secret else "configmaps"
        path = f"/api/v1/namespaces/{namespace}/{plural}/{name}"
        try:
            # A kubelet keeps retrying a volume whose object does not exist yet (for example the
            # kube-root-ca.crt ConfigMap the controller manager publishes into a new namespace).
            for _ in range(100):
                try:
                    obj = await self._as_node("GET", path)
                    break
                except KubeError as e:
                    if e.status != 404:
                        raise
                    await asyncio.sleep(0.2)
            else:
                obj = await self._as_node("GET", path)
        except KubeError as e:
            raise PodStartError(
                "CreateContainerConfigError", f"{plural[:-1]} {name} could not be read: {e}"
            ) from e
        return decode_data(obj, secret)

    async def service_account_token(self, pod: dict[str, Any], audience: str | None, seconds: int) -> str:
        m = pod["metadata"]
        sa = pod["spec"].get("serviceAccountName") or "default"
        spec: dict[str, Any] = {
            "expirationSeconds": max(seconds, 600),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": m["name"], "uid": m["uid"]},
        }
        if audience:
            spec["audiences"] = [audience]
        path = f"/api/v1/namespaces/{m['namespace']}/serviceaccounts/{sa}/token"
        try:
            review = await self._as_node(
                "POST", path, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
            )
        except KubeError as e:
            raise PodStartError(
                "CreateContainerConfigError", f"no token for service account {sa}: {e}"
            ) from e
        return str(review["status"]["token"])

    async def volume_path(self, namespace: str, claim: str) -> Path:
        """Follow a bound claim to its PersistentVolume; only hostPath and local PVs exist on this node."""
        pvc = await self._as_node("GET", f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
        volume = pvc["spec"].get("volumeName")
        if not volume or pvc.get("status", {}).get("phase") != "Bound":
            raise PodStartError("FailedMount", f"persistentVolumeClaim {claim} is not bound to a volume yet.")
        pv = await self._as_node("GET", f"/api/v1/persistentvolumes/{volume}")
        for kind in ("hostPath", "local"):
            if kind in pv["spec"]:
                path = Path(pv["spec"][kind]["path"])
                if kind == "hostPath" and pv["spec"][kind].get("type") == "DirectoryOrCreate":
                    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
                return path
        kinds = sorted(set(pv["spec"]) & {"nfs", "csi", "iscsi", "cephfs", "rbd"})
        raise PodStartError(
            "UnsupportedVolume", f"persistentVolume {volume} of type {kinds} cannot be mounted here."
        )

    async def watch_pods(self) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.cfg.node}"}
        while True:
            listing = await self.api.request("GET", "/api/v1/pods", **selector)
            for pod in listing["items"]:
                self.reconcile(pod)
            rv = listing["metadata"]["resourceVersion"]
            try:
                async for event in self.api.watch("/api/v1/pods", rv, **selector):
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.reconcile(event["object"])
                    elif event["type"] == "ERROR":
                        break  # 410 Gone or similar: relist
            except Exception:
                log.exception("pod watch ended; relisting")
                await asyncio.sleep(0.5)

    def reconcile(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if pod["metadata"].get("deletionTimestamp"):
            if uid not in self.tasks or not self.tasks[uid].get_name().startswith("delete"):
                previous = self.tasks.get(uid)
                self.tasks[uid] = asyncio.create_task(self.delete_pod(pod, previous), name=f"delete-{uid}")
        elif uid not in self.tasks and pod.get("status", {}).get("phase") in (None, "Pending"):
            self.tasks[uid] = asyncio.create_task(self.run_pod(pod), name=f"run-{uid}")

    def allocate_ip(self) -> ipaddress.IPv4Address:
        for address in self.net.process_pod_range.hosts():
            if address != self.net.gateway and address not in self.used_ips:
                self.used_ips.add(address)
                return address
        raise PodStartError("IPExhausted", "the node's pod address range is exhausted.")

    def _status_path(self, pod: dict[str, Any]) -> str:
        m = pod["metadata"]
        return f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}/status"

    async def run_pod(self, pod: dict[str, Any]) -> None:
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        runtime = PodRuntime(
            pod,
            self.net,
            self.allocate_ip(),
            self.cfg.state_dir,
            self,
            dns=self.cfg.cluster_dns,
            image_map=self.cfg.image_map,
        )
        self.runtimes[pod["metadata"]["uid"]] = runtime
        lock = asyncio.Lock()

        async def publish(message: str | None = None, failed: bool = False) -> None:
            """Report the pod's status as it is now (one report at a time, never out of order)."""
            async with lock:
                phase = "Failed" if failed else pod_phase(runtime.containers)
                pod_ip = None if failed else str(runtime.address)
                if message is None and phase != "Running":
                    message = "; ".join(
                        f"container {c.name} {c.message}" for c in runtime.containers if c.message
                    )
                status = pod_status(
                    phase, pod_ip, str(self.net.gateway), runtime.started_at, runtime.containers, message
                )
                try:
                    await self.api.merge_patch(self._status_path(pod), {"status": status})
                except KubeError as e:
                    if e.status != 404:  # a pod deleted meanwhile has no status to report
                        log.warning("status of pod %s not reported: %s", name, e)
                except OSError as e:
                    log.warning("status of pod %s not reported: %s", name, e)

        try:
            supervisors = [ContainerSupervisor(runtime, c, publish) for c in pod["spec"]["containers"]]
            await runtime.start()
        except (PodStartError, ProbeConfigError) as e:
            reason = e.reason if isinstance(e, PodStartError) else "CreateContainerConfigError"
            log.warning("pod %s cannot start: %s", name, e)
            for c in runtime.containers:
                c.reason, c.message = reason, str(e)
            await publish(str(e), failed=True)
            return
        log.info("pod %s running at %s", name, runtime.address)
        await publish()
        # Each container is probed and restarted (restartPolicy) on its own; the pod ends when all
        # have ended for good.
        await asyncio.gather(*(s.run() for s in supervisors))
        log.info("pod %s ended: %s", name, pod_phase(runtime.containers))
        await publish()

    async def delete_pod(self, pod: dict[str, Any], previous: asyncio.Task[None] | None) -> None:
        uid, m = pod["metadata"]["uid"], pod["metadata"]
        if previous is not None:
            previous.cancel()
        runtime = self.runtimes.pop(uid, None)
        if runtime is not None:
            await runtime.stop(float(m.get("deletionGracePeriodSeconds") or 30))
            self.used_ips.discard(runtime.address)
        path = f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}"
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": uid},
        }
        try:
            await self.api.request("DELETE", path, body)
        except KubeError as e:
            if e.status not in (404, 409):
                raise
        log.info("pod %s/%s deleted", m["namespace"], m["name"])
        self.tasks.pop(uid, None)

    async def shutdown(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*(r.stop(2) for r in self.runtimes.values()), return_exceptions=True)
        await self.api.close()

    async def run(self) -> None:
        await self.register()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        workers = [asyncio.create_task(self.heartbeat()), asyncio.create_task(self.watch_pods())]
        log.info("node %s ready (pods %s)", self.cfg.node, self.net.process_pod_range)
        await stop.wait()
        for w in workers:
            w.cancel()
        await self.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description="Run the pods bound to one node as local processes.")
    p.add_argument("--server", required=True, help="API server URL")
    p.add_argument("--token-file", required=True, help="file holding the node's bearer token")
    p.add_argument("--ca-file", required=True, help="CA bundle of the API server")
    p.add_argument("--node", required=True, help="node name to register")
    p.add_argument("--state-dir", required=True, type=Path, help="where pod sandboxes and logs live")
    p.add_argument("--slot", required=True, type=int, help="pod network slot (see podnet.py)")
    p.add_argument("--cpu", default="8")
    p.add_argument("--memory", default="32Gi")
    p.add_argument("--pods", default=110, type=int)
    p.add_argument("--version", default="v1.35.4", help="kubelet version to report")
    p.add_argument("--cluster-dns", help="cluster DNS Service IP for pods with dnsPolicy ClusterFirst")
    p.add_argument("--cluster-domain", default="cluster.local", help="DNS domain of the cluster")
    p.add_argument(
        "--image-map",
        action="append",
        default=[],
        metavar="NAME=LOCAL_IMAGE",
        help="run containers of image NAME (with or without its tag) from the locally built LOCAL_IMAGE "
        "with podman (image mode); images under localhost/hubkit-local/ always run that way",
    )
    a = p.parse_args()
    try:
        image_map = parse_image_map(a.image_map)
    except ImageRunError as e:
        p.error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = KubeletConfig(
        a.server,
        Path(a.token_file).read_text().strip(),
        a.ca_file,
        a.node,
        a.state_dir,
        a.slot,
        a.cpu,
        a.memory,
        a.pods,
        a.version,
        ClusterDNS(a.cluster_dns, a.cluster_domain) if a.cluster_dns else None,
        image_map,
    )
    asyncio.run(Kubelet(cfg).run())


if __name__ == "__main__":
    main()
