"""Homes and course directories on a real spawn: PVCs of hostPath PVs, provisioned before the pod."""

from __future__ import annotations

import secrets
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.processes import ManagedProcess, free_port

from .conftest import INSTRUCTOR, STUDENT, HubMaker, hub_log, objects_in
from .test_spawn_e2e import _in_pod, _pid, _post_server


@dataclass
class Export:
    root: Path
    homes: Path
    courses: Path
    url: str
    token: str


@pytest.fixture
def export(tmp_path: Path, control_plane: ControlPlane, restricted_namespace: str) -> Iterator[Export]:
    """A home tree and a course tree behind PVCs, and the home provisioner serving the home tree."""
    root = tmp_path / "export"
    homes, courses, skel = root / "home", root / "courses", root / "skel"
    for d in (homes, courses / "ds100", skel):
        d.mkdir(parents=True)
    root.chmod(0o755)
    (courses / "ds100" / "syllabus.md").write_text("# DS100\n")
    (skel / ".bashrc").write_text("export COURSE=ds100\n")
    token = secrets.token_hex(16)
    (tmp_path / "token").write_text(token)
    port = free_port()
    cli = str(Path(sys.executable).parent / "hubkit-spawner")
    argv = [cli, "provision-server", "--root", str(homes), "--skeleton", str(skel)]
    argv += ["--listen", f"127.0.0.1:{port}", "--token-file", str(tmp_path / "token")]
    provisioner = ManagedProcess("provisioner", argv, tmp_path / "provisioner.log").start()
    pvs = [
        control_plane.bind_host_path_claim(restricted_namespace, "home-nfs", homes),
        control_plane.bind_host_path_claim(restricted_namespace, "courses-nfs", courses),
    ]
    try:

        def up() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            except urllib.error.HTTPError:
                return True
            return False

        provisioner.wait_until(up, 30, "serving")
        yield Export(root, homes, courses, f"http://127.0.0.1:{port}", token)
    finally:
        provisioner.stop()
        for pv in pvs:
            control_plane.request("DELETE", f"/api/v1/persistentvolumes/{pv}")


def _config(export: Export) -> str:
    return f"""
c.HubKitSpawner.storage_layout = {{
    "home": {{"pvc": "home-nfs", "mount_path": "/home/jovyan"}},
    "courses": [{{"name": "ds100", "pvc": "courses-nfs", "sub_path": "ds100",
                  "mount_path": "/srv/courses/ds100", "read_groups": ["course:ds100:*"],
                  "write_groups": ["course:ds100:instructor"]}}],
}}
c.HubKitSpawner.home_provisioner_url = {export.url!r}
c.HubKitSpawner.home_provisioner_token = {export.token!r}
"""


def _fails_in_pod(pid: int, uid: int, gid: int, *argv: str) -> bool:
    try:
        _in_pod(pid, uid, gid, [gid], *argv)
    except subprocess.CalledProcessError:
        return True
    return False


async def test_home_is_provisioned_private_and_course_dir_is_read_only_for_students_only(
    hubkit_hub: HubMaker, control_plane: ControlPlane, restricted_namespace: str, export: Export
) -> None:
    mallory = {
        "groups": [],
        "hubkit": {**STUDENT["hubkit"], "key": "github:31337", "uid": 31337, "gid": 31337},
    }
    hub = hubkit_hub(_config(export), {"student": STUDENT, "instructor": INSTRUCTOR, "mallory": mallory})
    for user in ("student", "mallory"):
        await (await hub.login(user)).aclose()
    ident = STUDENT["hubkit"]
    home = export.homes / ident["home"]
    assert not home.exists()

    await hub.start_server("student", {}, timeout=120)
    info = home.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (20001, 20001, 0o700)
    assert (home / ".bashrc").read_text() == "export COURSE=ds100\n"

    pod = control_plane.request("GET", f"/api/v1/namespaces/{restricted_namespace}/pods/jupyter-student")
    pid, uid, gid = _pid(pod), ident["uid"], ident["gid"]
    _in_pod(pid, uid, gid, [gid], "touch", "/home/jovyan/notes.txt")
    assert (home / "notes.txt").stat().st_uid == 20001, "the user's file lands in their home on the export"
    assert _in_pod(pid, uid, gid, [gid], "stat", "-c", "%U:%G", "/home/jovyan") == "student:student"
    assert _in_pod(pid, uid, gid, [gid], "cat", "/srv/courses/ds100/syllabus.md") == "# DS100"
    assert _fails_in_pod(pid, uid, gid, "touch", "/srv/courses/ds100/cheat.txt"), "course dir is read-only"
    assert not (export.courses / "ds100" / "cheat.txt").exists()

    # Another identity claiming the same home name is refused before anything is created.
    status, message = await _post_server(hub, "mallory", {})
    assert (status, message) == (
        400,
        "Your home directory is recorded as belonging to another account; ask your admin.",
    )
    assert "jupyter-mallory" not in objects_in(control_plane, restricted_namespace)["pods"]
    assert "jupyter-mallory-nss" not in objects_in(control_plane, restricted_namespace)["configmaps"]
    assert "key=github:31337" in hub_log(hub)
    await hub.stop_server("student")

    # The instructor of the course gets the same directory read-write.
    await (await hub.login("instructor")).aclose()
    teacher = INSTRUCTOR["hubkit"]
    await hub.start_server("instructor", {}, timeout=120)
    pod = control_plane.request("GET", f"/api/v1/namespaces/{restricted_namespace}/pods/jupyter-instructor")
    (export.courses / "ds100").chmod(0o777)  # the course tree's own permissions let instructors write
    _in_pod(
        _pid(pod), teacher["uid"], teacher["gid"], [teacher["gid"]], "touch", "/srv/courses/ds100/answers.md"
    )
    assert (export.courses / "ds100" / "answers.md").stat().st_uid == teacher["uid"]
    assert (export.homes / teacher["home"]).stat().st_uid == teacher["uid"]
    await hub.stop_server("instructor")
