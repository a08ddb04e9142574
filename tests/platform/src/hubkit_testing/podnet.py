"""The pod network: one Linux bridge per platform, one network namespace and veth pair per pod.

This is what the bridge CNI plugin does on a real node. Pods get addresses from a private /20 that
exists only on this machine's bridge; the host (hub, proxy) reaches pods through the bridge, and pods
reach the host at the bridge's gateway address. Traffic never leaves the machine.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

SLOTS = 16  # 10.244.0.0/16 holds sixteen /20 pod networks: one per concurrently running platform
# Bridges and network namespaces are machine-wide, so the locks that hand out slots must be too
# (not per cache directory: two runs with different HUBKIT_CACHE would otherwise share a slot).
LOCK_DIR = Path("/run/lock/hubkit-podnet")


@dataclass(frozen=True)
class PodNetwork:
    """One platform's pod network."""

    slot: int
    bridge: str
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address

    @property
    def process_pod_range(self) -> ipaddress.IPv4Network:
        """Addresses for pods run by the process kubelet: the lower half of the /20."""
        return next(self.cidr.subnets(prefixlen_diff=1))

    @property
    def kwok_pod_range(self) -> ipaddress.IPv4Network:
        """Addresses kwok gives the pods it fakes: the upper half (on the bridge, never off-host)."""
        return list(self.cidr.subnets(prefixlen_diff=1))[-1]

    def netns_name(self, pod_uid: str) -> str:
        return f"hk{self.slot}-{pod_uid}"

    def netns_prefix(self) -> str:
        return f"hk{self.slot}-"


def network_for_slot(slot: int) -> PodNetwork:
    cidr = ipaddress.IPv4Network(f"10.244.{slot * 16}.0/20")
    return PodNetwork(slot=slot, bridge=f"hkbr{slot}", cidr=cidr, gateway=cidr.network_address + 1)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one ``ip`` command; failures raise with ip's own message."""
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one network command; a failure raises with the command and its own message."""
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


class SlotLock:
    """Holds one pod-network slot for the lifetime of a platform (an flock, released if we crash)."""

    def __init__(self, lock_dir: Path = LOCK_DIR) -> None:
        lock_dir.mkdir(parents=True, exist_ok=True)
        for slot in range(SLOTS):
            fd = os.open(lock_dir / f"podnet-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.fd, self.slot = fd, slot
            return
        raise RuntimeError(f"All {SLOTS} pod networks are in use by other running platforms; stop one first.")

    def release(self) -> None:
        os.close(self.fd)


def remove_network(net: PodNetwork) -> None:
    """Delete the bridge and every pod namespace of this slot (also what a crashed run left)."""
    for name in list_netns():
        if name.startswith(net.netns_prefix()):
            ip("netns", "delete", name, check=False)
    ip("link", "delete", net.bridge, check=False)


def create_network(net: PodNetwork) -> None:
    """Create the slot's bridge with the gateway address, after removing leftovers of an earlier run."""
    remove_network(net)
    ip("link", "add", net.bridge, "type", "bridge")
    ip("addr", "add", f"{net.gateway}/{net.cidr.prefixlen}", "dev", net.bridge)
    ip("link", "set", net.bridge, "up")


def list_netns() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def add_pod(net: PodNetwork, netns: str, veth: str, address: ipaddress.IPv4Address) -> None:
    """Create the pod's namespace, plug it into the bridge and give it ``address``."""
    ip("netns", "add", netns)
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
    ip("link", "set", veth, "master", net.bridge, "up")
    ip("-n", netns, "addr", "add", f"{address}/{net.cidr.prefixlen}", "dev", "eth0")
    ip("-n", netns, "link", "set", "eth0", "up")
    ip("-n", netns, "link", "set", "lo", "up")
    ip("-n", netns, "route", "add", "default", "via", str(net.gateway))
    # As containerd does for every pod sandbox: any user may bind low ports inside the pod.
    subprocess.run(
        ["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"],
        check=True,
        capture_output=True,
    )


def remove_pod(netns: str) -> None:
    """Delete the pod's namespace; its veth pair goes with it."""
    ip("netns", "delete", netns, check=False)
