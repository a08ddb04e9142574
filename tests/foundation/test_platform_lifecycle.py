"""A control plane's teardown leaves no process, port, network namespace or bridge behind."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from hubkit_testing import podnet
from hubkit_testing.clusternet import NetworkLock
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.processes import port_is_open


def test_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "k8s").start()
    try:
        ns = cp.create_namespace("lifecycle")
        pod = {
            "metadata": {"name": "sleeper"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"]}]},
        }
        cp.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
        running = cp.wait_for_pod_phase(ns, "sleeper", {"Running"}, timeout=30)
        pod_pid = int(running["status"]["containerStatuses"][0]["containerID"].removeprefix("process://"))
        pids = [p.pid for p in cp.processes] + [pod_pid]
        ports = list(cp.ports.values())
        assert cp.net is not None
        net = cp.net
        assert any(n.startswith(net.netns_prefix()) for n in podnet.list_netns())
    finally:
        cp.stop()
    assert [p for p in pids if Path(f"/proc/{p}").exists() and _not_zombie(p)] == []
    assert [p for p in ports if port_is_open("127.0.0.1", p)] == []
    assert [n for n in podnet.list_netns() if n.startswith(net.netns_prefix())] == []
    assert podnet.ip("link", "show", net.bridge, check=False).returncode != 0
    assert os.path.exists(tmp_path / "k8s" / "logs" / "kube-apiserver.log")


def _not_zombie(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except FileNotFoundError:
        return False


def test_concurrent_platforms_get_distinct_pod_networks(tmp_path: Path) -> None:
    """Two platforms on one machine (say `make dev` and `make test`) never share a bridge, whatever
    their cache directories: slots are locked machine-wide."""
    first = podnet.SlotLock(tmp_path)
    second = podnet.SlotLock(tmp_path)
    try:
        assert first.slot != second.slot
        nets = {podnet.network_for_slot(s.slot) for s in (first, second)}
        assert len({n.bridge for n in nets}) == 2
        assert not nets.pop().cidr.overlaps(nets.pop().cidr)
    finally:
        first.release()
        second.release()
    again = podnet.SlotLock(tmp_path)
    assert again.slot == min(first.slot, second.slot), "a released slot is handed out again"
    again.release()


def _netfilter_state() -> str:
    """Every iptables rule and ipset on the machine (kube-proxy's and the policy engine's are named)."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    sets = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True).stdout
    return rules + sets


def test_stop_with_the_cluster_network_leaves_no_rule_behind(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "k8s", cluster_network=True)
    try:
        cp.start()
        assert cp.net is not None
        net = cp.net
        during = _netfilter_state()
        assert "KUBE-SERVICES" in during
        assert "KUBE-ROUTER-FORWARD" in during
        assert f"-i {net.bridge} ! -o {net.bridge}" in during
        pids = [p.pid for p in cp.processes]
        startup = float((tmp_path / "k8s" / "startup-seconds").read_text())
    finally:
        cp.stop()
    print(f"start-up with the cluster network: {startup:.1f} s")
    assert [p for p in pids if Path(f"/proc/{p}").exists() and _not_zombie(p)] == []
    # Holding the lock, no other platform's cluster network can add rules while we look.
    lock = NetworkLock(timeout=900)
    try:
        after = _netfilter_state()
    finally:
        lock.release()
    leftovers = [
        line
        for line in after.splitlines()
        if re.search(r"KUBE-|hubkit|kube-router", line) or net.bridge in line
    ]
    assert leftovers == []
    assert podnet.ip("link", "show", net.bridge, check=False).returncode != 0
