"""What ``make dev``'s spawner offers: a profile menu with access rules, a registry image menu, a course
directory and JupyterLab.

- **Sample Course 101** (everyone): the image menu of ``jupyter/datascience`` from a local OCI registry
  (Debian's docker-registry, tags pushed here), newest two tags plus the recommended one, and a free-text
  tag that must look like ``2026.01`` and exist in the registry;
- **GPU (instructors only)**: one A100 on the simulated GPU node ``kwok-gpu-1`` (kwok runs no container
  there, so the pod is scheduled and shown running but no server answers);
- the course directory ``/srv/courses/sample-course-101``: read-only for students, writable for
  instructors (a PVC bound to a hostPath PersistentVolume of ``<workdir>/courses``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .controlplane import ControlPlane
from .registry import RegistryServer

REPOSITORY = "jupyter/datascience"
TAGS = ("2025.09", "2025.11", "2026.01", "2026.02", "latest")
RECOMMENDED = "2026.01"
COURSE = "sample-course-101"
COURSE_CLAIM = "dev-courses"


@dataclass(frozen=True)
class DevSpawnerSetup:
    registry: RegistryServer
    courses: Path
    namespace: str


def push_dev_images(registry: RegistryServer) -> None:
    """Small images of ``REPOSITORY`` tagged with ``TAGS`` (pushing again is harmless)."""
    for tag in TAGS:
        registry.push_image(REPOSITORY, tag)


def start_registry(workdir: Path) -> RegistryServer:
    """A registry on loopback holding the dev images."""
    registry = RegistryServer(workdir).start()
    push_dev_images(registry)
    return registry


def create_course_storage(cp: ControlPlane, namespace: str, courses: Path) -> None:
    """The course tree on the host and the PV/PVC the storage layout mounts it from."""
    course = courses / COURSE
    course.mkdir(parents=True, exist_ok=True)
    (course / "README.md").write_text(
        "# Sample Course 101\n\nCourse files shared by the instructors: read-only for students.\n"
    )
    for path in (courses, course):
        path.chmod(0o1777 if path == course else 0o755)
    cp.bind_host_path_claim(namespace, COURSE_CLAIM, courses)


def dev_spawner_config(setup: DevSpawnerSetup) -> str:
    """jupyterhub_config.py lines for HubKitSpawner in ``make dev`` (after ``kubespawner_config``)."""
    registry = setup.registry
    image = f"{registry.host}/{REPOSITORY}"
    course_group = f"course:{COURSE}:*"
    instructors = f"course:{COURSE}:instructor"
    return f"""
# make dev: HubKit's menu. Students see one profile; instructors also the GPU profile.
c.Spawner.default_url = "/lab"
c.KubeSpawner.image = {image + ":" + RECOMMENDED!r}
c.HubKitSpawner.profile_list = [
    {{
        "display_name": "Sample Course 101",
        "slug": "course",
        "description": "JupyterLab with the course's Python image and the course files.",
        "default": True,
        "kubespawner_override": {{"cpu_limit": 1, "mem_limit": "1G"}},
        "profile_options": {{
            "image": {{
                "display_name": "Image version",
                "registry": {{"url": {registry.url!r}, "repository": {REPOSITORY!r}, "image": {image!r},
                              "tag_pattern": r"^\\d{{4}}\\.\\d{{2}}$", "newest": 2,
                              "recommended": {RECOMMENDED!r}}},
                "unlisted_choice": {{
                    "enabled": True,
                    "display_name": "Another version (YYYY.MM)",
                    "display_name_in_choices": "Other version...",
                    "validation_regex": r"^\\d{{4}}\\.\\d{{2}}$",
                    "validation_message": "give a version like 2026.01",
                }},
            }},
        }},
    }},
    {{
        "display_name": "GPU (instructors only)",
        "slug": "gpu",
        "description": "One NVIDIA A100 on the simulated GPU node (its pod is scheduled; no server runs).",
        "allowed_groups": [{instructors!r}],
        "gpu": {{"count": 1, "product": "NVIDIA-A100-SXM4-40GB", "name": "A100"}},
        "kubespawner_override": {{
            "image": {image + ":" + RECOMMENDED!r},
            "cpu_limit": 4,
            "mem_limit": "16G",
            "tolerations": [{{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}}],
        }},
    }},
]
c.HubKitSpawner.storage_layout = {{
    "courses": [{{"name": {COURSE!r}, "pvc": {COURSE_CLAIM!r}, "sub_path": {COURSE!r},
                  "mount_path": "/srv/courses/{COURSE}", "read_groups": [{course_group!r}],
                  "write_groups": [{instructors!r}]}}],
}}
"""
