"""KubeSpawner's per-user namespaces with HubKitSpawner, on the real API server through a real hub.

Each user's pod and its passwd/group ConfigMap go to the user's own namespace; the image menu stays one
per hub, in the hub's namespace (KubeSpawner's idea of it: the service account's namespace, "default"
outside a cluster), never one per user namespace.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError

import pytest

from hubkit.services.image_menu_contract import CONFIGMAP_NAME, HUB_LABEL
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.waiting import eventually

from .conftest import HubMaker, hub_log, show_form
from .test_menu_publish import read_menu


@pytest.fixture
def hub_namespace_menu(control_plane: ControlPlane) -> Iterator[str]:
    """The hub name of this test's menu; the menu it publishes in "default" is removed afterwards."""
    name = f"usr-ns-{secrets.token_hex(3)}"
    yield name
    cm = read_menu(control_plane, "default")
    if cm is not None and cm["metadata"]["labels"].get(HUB_LABEL) == name:
        control_plane.request("DELETE", f"/api/v1/namespaces/default/configmaps/{CONFIGMAP_NAME}")


async def test_pods_and_nss_maps_go_to_user_namespaces_and_the_menu_stays_one_per_hub(
    hubkit_hub: HubMaker,
    control_plane: ControlPlane,
    restricted_namespace: str,
    hub_namespace_menu: str,
    tmp_path: Path,
) -> None:
    ns = restricted_namespace
    profiles = [{"display_name": "Course", "slug": "course", "kubespawner_override": {}}]
    profiles_file = tmp_path / "profiles.json"
    profiles_file.write_text(json.dumps(profiles))
    user_ns = f"{ns}-student"
    hub = hubkit_hub(
        f"""
import json, pathlib
c.KubeSpawner.enable_user_namespaces = True
c.KubeSpawner.user_namespace_template = "{ns}-{{username}}"
c.HubKitSpawner.image_menu_publish_interval = 1
c.HubKitSpawner.image_menu_hub_name = {hub_namespace_menu!r}
c.HubKitSpawner.profile_list = lambda spawner: json.loads(pathlib.Path({str(profiles_file)!r}).read_text())
"""
    )
    try:
        await show_form(hub, "student")
        cm = await eventually(
            lambda: read_menu(control_plane, "default"), what="the menu in the hub's namespace"
        )
        assert cm["metadata"]["labels"][HUB_LABEL] == hub_namespace_menu
        created = f"Image menu default/{CONFIGMAP_NAME} created"
        await eventually(
            lambda: created in hub_log(hub) or None, what="the hub's log line"
        )  # after the write

        await hub.start_server("student", {"profile": "course"}, timeout=120)
        pod = control_plane.request("GET", f"/api/v1/namespaces/{user_ns}/pods/jupyter-student")
        assert pod["status"]["phase"] == "Running"
        nss = control_plane.request("GET", f"/api/v1/namespaces/{user_ns}/configmaps/jupyter-student-nss")
        assert nss["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
        assert read_menu(control_plane, user_ns) is None  # no menu per user namespace
        await hub.stop_server("student")
    finally:
        hub.stop()
        with contextlib.suppress(HTTPError):  # not there if the spawn failed before creating it
            control_plane.delete_namespace(user_ns)
