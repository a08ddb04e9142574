"""Typed settings of ``hubkit-prepuller`` (YAML or JSON file plus HUBKIT_PREPULLER_* variables)."""

from __future__ import annotations

from pydantic import Field

from hubkit.services.common import ServiceSettings
from hubkit.services.image_menu_contract import Toleration

from .planning import KUBELET_MAX_IMAGES

__all__ = ["PrepullerSettings"]


class PrepullerSettings(ServiceSettings):
    """Loaded by ``load_settings(PrepullerSettings, path, env_prefix="HUBKIT_PREPULLER_")``."""

    namespace: str = Field(description="Namespace the pull pods run in (the prepuller's own).")
    kubeconfig: str | None = Field(
        default=None, description="Kubeconfig file; without it the pod's service account is used."
    )
    menu_namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose hubkit-image-menu ConfigMaps are read; empty means all namespaces.",
    )
    max_images_per_menu: int = Field(
        default=100, ge=1, description="A hub's menu listing more images than this is refused as a whole."
    )
    extra_images: list[str] = Field(
        default_factory=list, description="Images pulled on every served node besides the hubs' menus."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Only nodes with these labels are served."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description=(
            "Taints every user pod tolerates anyway (say a dedicated user-pool taint): they do not make a "
            "node ineligible, and every pull pod carries these tolerations."
        ),
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list,
        description=(
            "Secrets (kubernetes.io/dockerconfigjson, in the prepuller's namespace) every pull pod names in "
            "imagePullSecrets: the ones the hubs' user pods pull private images with."
        ),
    )
    priority_class_name: str = Field(default="hubkit-prepull", description="PriorityClass of pull pods.")
    priority_value: int = Field(
        default=-20,
        le=-11,
        description=(
            "Its value, created when missing: below the cluster autoscaler's expendable cutoff (-10) so a "
            "pull pod never keeps a node alive."
        ),
    )
    per_node_concurrency: int = Field(default=1, ge=1, le=8, description="Pulls at once on one node.")
    cluster_concurrency: int = Field(default=10, ge=1, le=500, description="Pulls at once in the cluster.")
    pull_timeout_seconds: float = Field(
        default=900, gt=0, description="A pull pod older than this is failed."
    )
    failure_backoff_seconds: float = Field(
        default=300, ge=0, description="Wait before retrying a failed pull on the same node."
    )
    resync_seconds: float = Field(default=60, gt=0, description="Full reconcile at least this often.")
    command: list[str] = Field(
        default_factory=lambda: ["/bin/true"],
        min_length=1,
        description="What a pull pod runs once the image is there; a failing command still counts as pulled.",
    )
    max_node_images: int = Field(
        default=KUBELET_MAX_IMAGES,
        ge=1,
        description="The kubelets' nodeStatusMaxImages: a node listing this many may have more.",
    )
    listen_host: str = Field(default="0.0.0.0", description="Address of /health, /metrics and /status.")
    listen_port: int = Field(default=9460, ge=0, le=65535, description="Port of the status server.")
