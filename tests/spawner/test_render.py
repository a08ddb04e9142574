"""`hubkit-spawner render`: the objects a spawn would create, from an ordinary jupyterhub_config.py."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import yaml

from hubkit.spawner.cli import main
from hubkit_testing.controlplane import ControlPlane

from .conftest import INSTRUCTOR, STUDENT

CONFIG = """
c = get_config()  # noqa
c.JupyterHub.spawner_class = "hubkit"
c.KubeSpawner.namespace = "jhub"
c.KubeSpawner.image = "quay.io/jupyterhub/singleuser:5.3"
c.KubeSpawner.tolerations = [{"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
                              "effect": "NoSchedule"}]
c.KubeSpawner.volumes = [{"name": "shared", "emptyDir": {}}]
c.HubKitSpawner.storage_layout = {
    "home": {"nfs": {"server": "home-nfs.storage.svc.cluster.local", "path": "/export/home"},
             "mount_path": "/home/jovyan"},
    "courses": [{"name": "ds100", "nfs": {"server": "10.0.0.5", "path": "/export/courses"},
                 "sub_path": "ds100", "mount_path": "/home/jovyan/ds100", "read_groups": ["course:ds100:*"],
                 "write_groups": ["course:ds100:instructor"]}],
}
c.HubKitSpawner.profile_list = [
    {"display_name": "CPU", "slug": "cpu",
     "kubespawner_override": {
        "volumes": [{"name": "shared", "emptyDir": {"medium": "Memory"}}, {"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "hubkit.dev/pool", "operator": "Equal", "value": "cpu",
                         "effect": "NoSchedule"}],
     },
     "profile_options": {"image": {
        "display_name": "Image",
        "choices": {"base": {"display_name": "Base"}},
        "unlisted_choice": {"enabled": True, "validation_regex": "^example/[a-z]+:[0-9.]+$",
                            "kubespawner_override": {"image": "{value}"}}}}},
    {"display_name": "GPU", "slug": "gpu", "allowed_groups": ["course:*:instructor"]},
]
"""


def _render(tmp_path: Path, *args: str, config_text: str = CONFIG) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process (the same ``main`` the console script calls), capturing its output."""
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(config_text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["render", "--config", str(config), *args])
    return subprocess.CompletedProcess(["hubkit-spawner"], code, out.getvalue(), err.getvalue())


def _identity_args(who: dict[str, Any]) -> list[str]:
    args = ["--auth-state", json.dumps({"hubkit": who["hubkit"]})]
    for group in who["groups"]:
        args += ["--group", group]
    return args


def test_render_prints_configmap_and_pod_with_nfs_layout_and_merged_lists(tmp_path: Path) -> None:
    result = _render(
        tmp_path, "--user", "student", *_identity_args(STUDENT), "--profile", "cpu",
        "--option", "image--unlisted-choice=example/julia:2",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    configmap, pod = list(yaml.safe_load_all(result.stdout))
    assert configmap["kind"] == "ConfigMap"
    assert "student:x:20001:20001:" in configmap["data"]["passwd"]
    assert pod["kind"] == "Pod"
    spec = pod["spec"]
    assert spec["containers"][0]["image"] == "example/julia:2"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["hubkit-home"]["nfs"] == {
        "path": "/export/home/lti-canvas-s-1-0a3f9c1e",
        "readOnly": False,
        "server": "home-nfs.storage.svc.cluster.local",
    }
    assert volumes["course-ds100-b673078e"]["nfs"]["readOnly"] is True
    # lists merged by name / key: the override replaced "shared", added "data", kept the base toleration
    assert volumes["shared"] == {"name": "shared", "emptyDir": {"medium": "Memory"}}
    assert "data" in volumes
    assert [t["key"] for t in spec["tolerations"]] == ["hub.jupyter.org/dedicated", "hubkit.dev/pool"]


def test_instructor_gets_writable_course_directory(tmp_path: Path) -> None:
    result = _render(tmp_path, "--user", "instructor", *_identity_args(INSTRUCTOR), "--profile", "gpu")
    assert result.returncode == 0, result.stderr
    pod = list(yaml.safe_load_all(result.stdout))[-1]
    mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["/home/jovyan/ds100"]["readOnly"] is False


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--profile", "gpu"], "You may not use the profile 'gpu'; you may pick: cpu."),
        (
            ["--profile", "cpu", "--option", "image--unlisted-choice=../../etc"],
            "'../../etc' is not a valid value for 'image': it must match ^example/[a-z]+:[0-9.]+$.",
        ),
        (
            ["--profile", "cpu", "--option", "mem_limit=64G"],
            "'mem_limit' is not an option of the profile 'cpu'",
        ),
    ],
)
def test_refused_render_exits_2_with_the_sentence(tmp_path: Path, args: list[str], sentence: str) -> None:
    result = _render(tmp_path, "--user", "student", *_identity_args(STUDENT), *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().startswith(sentence)


PVC_LAYOUT = """
c.HubKitSpawner.storage_layout = {
    "home": {"pvc": "home-nfs", "mount_path": "/home/jovyan"},
    "courses": [{"name": "ds100", "pvc": "courses-nfs", "sub_path": "ds100",
                 "mount_path": "/home/jovyan/ds100", "read_groups": ["course:ds100:*"],
                 "write_groups": ["course:ds100:instructor"]}],
}
"""


def _dry_run(cp: ControlPlane, namespace: str, kind: str, doc: dict[str, Any]) -> tuple[int, str]:
    doc["metadata"]["namespace"] = namespace
    try:
        cp.request("POST", f"/api/v1/namespaces/{namespace}/{kind}?dryRun=All", doc)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["message"]
    return 201, ""


def test_rendered_pvc_layout_passes_restricted_admission_on_the_real_apiserver(
    tmp_path: Path, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    args = ["--user", "student", *_identity_args(STUDENT), "--profile", "cpu"]
    result = _render(tmp_path, *args, config_text=CONFIG + PVC_LAYOUT)
    assert result.returncode == 0, result.stderr
    configmap, pod = list(yaml.safe_load_all(result.stdout))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["hubkit-home"]["persistentVolumeClaim"] == {"claimName": "home-nfs", "readOnly": False}
    mounts = {m["name"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["hubkit-home"]["subPath"] == "lti-canvas-s-1-0a3f9c1e"
    assert _dry_run(control_plane, restricted_namespace, "configmaps", configmap) == (201, "")
    assert _dry_run(control_plane, restricted_namespace, "pods", pod) == (201, "")


def test_plain_nfs_volumes_are_refused_by_restricted_admission(
    tmp_path: Path, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    """Why docs/spawner.md says: in a restricted namespace use the "pvc" source (a PVC of an NFS PV)."""
    result = _render(tmp_path, "--user", "student", *_identity_args(STUDENT), "--profile", "cpu")
    pod = list(yaml.safe_load_all(result.stdout))[-1]
    code, message = _dry_run(control_plane, restricted_namespace, "pods", pod)
    assert code == 403
    assert 'use restricted volume type "nfs"' in message


def test_console_script_refuses_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(CONFIG)
    cli = Path(sys.executable).parent / "hubkit-spawner"
    args = [str(cli), "render", "--config", str(config), "--user", "student", *_identity_args(STUDENT)]
    result = subprocess.run([*args, "--profile", "gpu"], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == "You may not use the profile 'gpu'; you may pick: cpu."


@pytest.mark.parametrize(
    ("block", "sentence"),
    [
        ({**STUDENT["hubkit"], "home": "../etc"}, "Your home directory name is not valid"),
        ({**STUDENT["hubkit"], "home": "a/b"}, "Your home directory name is not valid"),
        ({**STUDENT["hubkit"], "uid": 0}, "Your account has no valid POSIX identity"),
        (
            {**STUDENT["hubkit"], "posix_groups": {"Bad Name": 5000}},
            "Your account has no valid POSIX identity",
        ),
        ({**STUDENT["hubkit"], "key": "no-provider"}, "Your account has no valid POSIX identity"),
    ],
)
def test_invalid_identity_blocks_are_refused(tmp_path: Path, block: dict[str, Any], sentence: str) -> None:
    args = ["--user", "student", "--group", "course:ds100:student", "--profile", "cpu"]
    result = _render(tmp_path, *args, "--auth-state", json.dumps({"hubkit": block}))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(sentence)


def test_fixed_fallback_identity_for_users_without_a_block(tmp_path: Path) -> None:
    config = CONFIG + "\nc.HubKitSpawner.identity_fallback = 'fixed'\nc.HubKitSpawner.fallback_uid = 4242\n"
    result = _render(tmp_path, "--user", "guest", "--profile", "cpu", config_text=config)
    assert result.returncode == 0, result.stderr
    configmap, pod = list(yaml.safe_load_all(result.stdout))
    assert pod["spec"]["securityContext"]["runAsUser"] == 4242
    assert "guest:x:4242:1000:jupyterhub_guest:" in configmap["data"]["passwd"]
    home = {v["name"]: v for v in pod["spec"]["volumes"]}["hubkit-home"]["nfs"]["path"]
    assert home.startswith("/export/home/jupyterhub-guest-")
    # and without the fallback the same request is refused
    result = _render(tmp_path, "--user", "guest", "--profile", "cpu")
    assert result.returncode == 2
    assert result.stderr.startswith("Your account has no POSIX identity yet")
