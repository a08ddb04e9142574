"""What the process kubelet knows of container images it cannot pull.

Images are not pulled here (no registry reaches the machine and there is no container runtime). A
container runs on the host's filesystem, so an image contributes only what its config would have set:
the default command, user and home. Known images are listed here; a container whose image is unknown
must carry an explicit command, or the kubelet fails it with a plain message.

The jupyter single-user images map to a venv built by ``tests/platform/singleuser-image.sh`` from
``singleuser-requirements.txt`` (world-readable, so pods can run as any uid).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageProfile:
    """The parts of an image's config the process kubelet honours."""

    pattern: str
    command: tuple[str, ...]
    uid: int
    gid: int
    home: str
    workdir: str
    # Name of an environment variable of the kubelet naming the image's venv (its bin goes first on PATH).
    venv_var: str | None = None

    def path(self) -> str:
        """The container's default PATH: the image's venv (if any), then the system directories."""
        venv = os.environ.get(self.venv_var, "") if self.venv_var else ""
        return ":".join(([f"{venv}/bin"] if venv else []) + list(SYSTEM_PATH))


SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
SINGLEUSER_ENV_VAR = "HUBKIT_SINGLEUSER_ENV"


IMAGE_PROFILES: tuple[ImageProfile, ...] = (
    # jupyter docker-stacks and jupyterhub/singleuser images: user jovyan (1000:100), home /home/jovyan.
    ImageProfile(
        pattern=r"(^|/)(jupyterhub/singleuser|jupyter/[\w.-]+)(:|@|$)",
        command=("jupyterhub-singleuser",),
        uid=1000,
        gid=100,
        home="/home/jovyan",
        workdir="/home/jovyan",
        venv_var=SINGLEUSER_ENV_VAR,
    ),
    # pause images (placeholders, prepull pods): 65535 is the pause image's user.
    ImageProfile(
        pattern=r"(^|/)pause(:|@|$)",
        command=("sleep", "infinity"),
        uid=65535,
        gid=65535,
        home="/",
        workdir="/",
    ),
    # Plain OS images run their shell as root.
    ImageProfile(
        pattern=r"(^|/)(busybox|debian|ubuntu|alpine|python)(:|@|$)",
        command=("sh",),
        uid=0,
        gid=0,
        home="/root",
        workdir="/",
    ),
)


def image_profile(image: str) -> ImageProfile | None:
    """The profile of a known image, or None."""
    for profile in IMAGE_PROFILES:
        if re.search(profile.pattern, image):
            return profile
    return None
