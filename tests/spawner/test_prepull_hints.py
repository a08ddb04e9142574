"""The spawn form marks images some node still lacks, from the prepuller's real status (or a served copy)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.loopback_http import LoopbackHTTPServer
from hubkit_testing.nodes import KWOK_TAINT, NodeSpec, kwok_node_manifest
from hubkit_testing.processes import free_port
from hubkit_testing.service_processes import start_prepuller
from hubkit_testing.waiting import wait_for

from .conftest import HubMaker, hub_log, show_form

BASE = "registry.example.org/course/base:1"
GRADER = "registry.example.org/course/grader:1"
TORCH = "registry.example.org/course/torch:3"
RESEARCH = "registry.example.org/lab/research:7"
HINT = "first start may take a few minutes"
PATCH = "application/merge-patch+json"

PROFILES = f"""
c.HubKitSpawner.profile_list = [
    {{
        "display_name": "Course", "slug": "course",
        "kubespawner_override": {{"image": {BASE!r}}},
        "profile_options": {{"image": {{"display_name": "Image", "choices": {{
            "base": {{"display_name": "Base", "kubespawner_override": {{}}}},
            "grader": {{"display_name": "Grader", "allowed_groups": ["course:*:instructor"],
                        "kubespawner_override": {{"image": {GRADER!r}}}}},
        }}}}}},
    }},
    {{
        "display_name": "GPU", "slug": "gpu", "allowed_groups": ["course:*:instructor"],
        "gpu": {{"count": 1, "product": "T4"}},
        "kubespawner_override": {{"image": {TORCH!r}}},
    }},
    {{
        "display_name": "Research", "slug": "research", "allowed_groups": ["course:*:instructor"],
        "kubespawner_override": {{"image": {RESEARCH!r}}},
    }},
]
"""


def marks(form: str) -> set[str]:
    """The form's marks: "profile:<slug>" for a profile's hint, "<profile>/<option>/<choice>" per choice."""
    found: set[str] = set()
    for fieldset in re.findall(r"<fieldset.*?</fieldset>", form, re.S):
        slug = re.search(r'name="profile" value="([^"]+)"', fieldset)
        assert slug is not None
        if '<p class="hubkit-prepull">First start may take a few minutes.</p>' in fieldset:
            found.add(f"profile:{slug.group(1)}")
        for select, options in re.findall(r'<select id="([^"]+)".*?>(.*?)</select>', fieldset, re.S):
            name = select.removeprefix(f"profile-option-{slug.group(1)}--")
            for value, text in re.findall(r'<option value="([^"]+)".*?>(.*?)</option>', options, re.S):
                if f"({HINT})" in text:
                    found.add(f"{slug.group(1)}/{name}/{value}")
    return found


class StatusHandler(BaseHTTPRequestHandler):
    """Serves a fixed prepuller status document, as ``GET /status`` of hubkit-prepuller does."""

    status: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        body = json.dumps(self.status).encode()
        self.send_response(200 if self.path == "/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def image_status(image: str, everywhere: bool) -> dict[str, Any]:
    return {
        "image": image,
        "hubs": ["physics"],
        "profiles": [],
        "present": ["node-1"],
        "missing": [] if everywhere else ["node-2"],
        "unknown": [],
        "on_every_eligible_node": everywhere,
    }


async def test_form_marks_exactly_what_the_status_lacks_and_renders_plainly_without_it(
    hubkit_hub: HubMaker,
) -> None:
    StatusHandler.status = {
        "images": [
            image_status(BASE, True),
            image_status(GRADER, False),
            image_status(TORCH, False),
            image_status(RESEARCH, True),
            image_status("docker.io/library/busybox:1.36", False),  # another hub's image
        ]
    }
    server = LoopbackHTTPServer(StatusHandler, "prepuller-status")
    server.start()
    try:
        hub = hubkit_hub(
            PROFILES
            + f"""
c.HubKitSpawner.prepuller_status_url = "{server.url}/status"
c.HubKitSpawner.prepuller_status_ttl = 0.3
c.HubKitSpawner.image_menu_publish_interval = 0
"""
        )
        form = await show_form(hub, "instructor")
        assert marks(form) == {"course/image/grader", "profile:gpu"}
        assert marks(await show_form(hub, "student")) == set(), "the student's menu has no lacking image"
    finally:
        server.stop()

    await asyncio.sleep(0.4)  # the cached status expires; the prepuller is gone
    for _ in range(2):
        form = await show_form(hub, "instructor")
        assert marks(form) == set()
        assert 'value="grader"' in form
        assert 'name="profile" value="research"' in form
        assert HINT not in form.lower()
        await asyncio.sleep(0.4)
    log = hub_log(hub)
    assert log.count("The spawn form shows no image hints while the prepuller is down") == 1, "logged once"


# --- with the real prepuller, reading the menu the hub published ---------------------------------------


def set_node_images(cp: ControlPlane, name: str, images: list[str]) -> None:
    """What a kubelet reports in its node status once it holds ``images``."""
    body = {"status": {"images": [{"names": [i], "sizeBytes": 10**9} for i in images]}}
    cp.request("PATCH", f"/api/v1/nodes/{name}/status", body, content_type=PATCH)


@pytest.fixture
def labelled_nodes(control_plane: ControlPlane) -> Iterator[tuple[dict[str, str], str, str]]:
    """A CPU node that holds the course's base image and a tainted T4 GPU node that holds nothing."""
    tag = secrets.token_hex(3)
    label = {"hubkit.dev/hint-test": tag}
    cpu, gpu = f"hint-cpu-{tag}", f"hint-gpu-{tag}"
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    for spec, images in (
        (NodeSpec(cpu, labels=label), [BASE]),
        (NodeSpec(gpu, cpu="8", gpus=2, gpu_product="T4", labels=label, taints=[taint]), []),
    ):
        manifest = kwok_node_manifest(spec)
        manifest["status"]["images"] = [{"names": [i], "sizeBytes": 10**9} for i in images]
        control_plane.request("POST", "/api/v1/nodes", manifest)
    control_plane.wait_for_nodes_ready([cpu, gpu])
    try:
        yield label, cpu, gpu
    finally:
        for name in (cpu, gpu):
            control_plane.request("DELETE", f"/api/v1/nodes/{name}")


async def test_real_prepuller_reads_the_published_menu_and_the_form_shows_what_is_missing(
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    namespace: str,
    labelled_nodes: tuple[dict[str, str], str, str],
    tmp_path: Path,
) -> None:
    label, cpu, gpu = labelled_nodes
    port = free_port()
    hub = hubkit_hub(
        PROFILES
        + f"""
c.HubKitSpawner.image_menu_publish_interval = 1
c.HubKitSpawner.image_menu_hub_name = "physics"
c.HubKitSpawner.prepuller_status_url = "http://127.0.0.1:{port}/status"
c.HubKitSpawner.prepuller_status_ttl = 0.3
c.HubKitSpawner.prepuller_status_timeout = 1
"""
    )
    assert marks(await show_form(hub, "instructor")) == set(), "no prepuller yet: no marks"
    wait_for(
        lambda: any(
            c["metadata"]["name"] == "hubkit-image-menu"
            for c in control_plane.request("GET", f"/api/v1/namespaces/{restricted_namespace}/configmaps")[
                "items"
            ]
        ),
        30,
        "the published menu",
    )
    settings = {
        "namespace": namespace,
        "kubeconfig": str(control_plane.admin_kubeconfig),
        "menu_namespaces": [restricted_namespace],
        "node_selector": label,
        "tolerations": [{"key": KWOK_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}],
        "resync_seconds": 2,
    }
    running = start_prepuller(tmp_path, settings, port)
    try:

        def status_images() -> dict[str, dict[str, Any]]:
            return {i["image"]: i for i in running.status()["images"]}

        images = wait_for(lambda: len(s := status_images()) >= 4 and s, 30, "the hub's images in the status")
        assert images[GRADER]["missing"] == [cpu]
        assert images[TORCH]["missing"] == [gpu]
        assert images[BASE]["on_every_eligible_node"]
        assert running.status()["hubs"] == [
            {"configmap": f"{restricted_namespace}/hubkit-image-menu", "hub": "physics"}
        ]
        assert marks(await show_form(hub, "instructor")) == {
            "course/image/grader",
            "profile:gpu",
            "profile:research",
        }

        # The CPU node now holds the grader image (as after its pull): the mark goes away.
        set_node_images(control_plane, cpu, [BASE, GRADER])
        wait_for(lambda: status_images()[GRADER]["on_every_eligible_node"], 30, "grader everywhere")
        await asyncio.sleep(0.4)
        assert marks(await show_form(hub, "instructor")) == {"profile:gpu", "profile:research"}
    finally:
        assert running.stop_cleanly() == 0
