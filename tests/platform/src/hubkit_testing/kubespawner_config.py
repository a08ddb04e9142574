"""jupyterhub_config.py fragments that point a hub's KubeSpawner at the hermetic control plane."""

from __future__ import annotations

from .controlplane import ControlPlane

SINGLEUSER_IMAGE = "quay.io/jupyterhub/singleuser:5.3"


def kubespawner_config(
    cp: ControlPlane, namespace: str, spawner_class: str = "kubespawner.KubeSpawner"
) -> str:
    """Spawner settings: the namespace, an image the process kubelet knows, small guarantees.

    The hub listens on the pod network's gateway (``hub_ip`` in HubOptions), so pods reach its API there.
    """
    return f"""
c.JupyterHub.spawner_class = {spawner_class!r}
c.JupyterHub.hub_connect_ip = {cp.gateway!r}
c.KubeSpawner.namespace = {namespace!r}
c.KubeSpawner.image = {SINGLEUSER_IMAGE!r}
c.KubeSpawner.start_timeout = 120
c.KubeSpawner.http_timeout = 60
c.KubeSpawner.cpu_guarantee = 0.1
c.KubeSpawner.mem_guarantee = "128M"
"""
