"""Real spawns with HubKitSpawner into a namespace that enforces the "restricted" Pod Security Standard."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from hubkit.spawner.jupyterhub_compat import HAS_SPAWN_EXCEPTION
from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.hub import Hub
from hubkit_testing.registry import RegistryServer

from .conftest import INSTRUCTOR, HubMaker, hub_log, objects_in

PROFILE_CONFIG = """
c.HubKitSpawner.profile_list = [
    {
        "display_name": "Course environment",
        "slug": "course",
        "description": "Python for DS100",
        "kubespawner_override": {"environment": {"COURSE": "ds100"}, "mem_limit": "1G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base", "kubespawner_override": {}},
                    "grader": {
                        "display_name": "Grader",
                        "allowed_groups": ["course:*:instructor"],
                        "kubespawner_override": {
                            "image": "jupyter/minimal-notebook:grader",
                            "environment": {"GRADER": "1"},
                        },
                    },
                },
            },
        },
    },
    {
        "display_name": "Research (instructors)",
        "slug": "research",
        "allowed_groups": ["course:*:instructor"],
        "kubespawner_override": {"environment": {"RESEARCH": "yes"}},
    },
]
"""


def _pid(pod: dict[str, Any]) -> int:
    return int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("process://"))


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _in_pod(pid: int, uid: int, gid: int, groups: list[int], *argv: str) -> str:
    """Run argv inside the pod's mount namespace as the pod's user (what a terminal in the pod does)."""
    cmd = ["nsenter", "-t", str(pid), "-m", "--", "setpriv", f"--reuid={uid}", f"--regid={gid}"]
    cmd += [f"--groups={','.join(map(str, groups))}", *argv]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=10).stdout.strip()


async def _post_server(hub: Hub, user: str, options: dict[str, Any]) -> tuple[int, str]:
    await hub.ensure_user(user)
    async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
        r = await c.post(f"/hub/api/users/{user}/server", json=options)
    return r.status_code, r.json().get("message", "") if r.content else ""


def _images_profile(registry: RegistryServer, repo: str) -> str:
    return f"""
c.HubKitSpawner.profile_list.append({{
    "display_name": "Pick an image", "slug": "images",
    "profile_options": {{"image": {{
        "registry": {{"url": {registry.url!r}, "repository": {repo!r}, "newest": 2}},
        "unlisted_choice": {{"enabled": True}},
    }}}},
}})
"""


async def test_refused_requests_are_400_with_one_sentence_and_create_nothing(
    hubkit_hub: HubMaker, control_plane: ControlPlane, restricted_namespace: str, registry: RegistryServer
) -> None:
    repo = f"course/refusals-{restricted_namespace}"
    for tag in ("1.0", "1.1"):
        registry.push_image(repo, tag)
    hub = hubkit_hub(PROFILE_CONFIG + _images_profile(registry, repo))
    client = await hub.login("student")  # stores the student's auth_state and groups
    await client.aclose()
    cases = {
        "You may not use the profile 'research'; you may pick: course, images.": {"profile": "research"},
        "You may not use 'grader' for 'image'; you may pick: base.": {"profile": "course", "image": "grader"},
        "There is no profile 'gpu-xl'; you may pick: course, images.": {"profile": "gpu-xl"},
        "'cpu_limit' is not an option of the profile 'course'; its options are: image.": {
            "profile": "course",
            "cpu_limit": "64",
        },
        "The profile 'course' does not accept your own value for 'image'; pick one of: base.": {
            "profile": "course",
            "image--unlisted-choice": "evil/image:1",
        },
        "'9.9' is not a choice for 'image'; you may pick: 1.1, 1.0.": {"profile": "images", "image": "9.9"},
        "'../x' is not a valid value for 'image': give an image tag such as 2024.1.": {
            "profile": "images",
            "image--unlisted-choice": "../x",
        },
        f"The image tag '9.9' does not exist in {repo}; pick one of: 1.1, 1.0.": {
            "profile": "images",
            "image--unlisted-choice": "9.9",
        },
    }
    for sentence, options in cases.items():
        status, message = await _post_server(hub, "student", options)
        assert (status, message) == (400, sentence)
        model = await hub.api("GET", "/users/student")
        assert model["servers"] == {}, "a refused spawn must leave no server behind"
    assert objects_in(control_plane, restricted_namespace) == {"pods": [], "configmaps": []}
    log = hub_log(hub)
    assert "Refused spawn for student" in log
    assert "profile=research" in log  # the admin sees the context
    # a user without an identity block is refused too (identity_fallback = "refuse" by default)
    status, message = await _post_server(hub, "nobody-special", {})
    assert status == 400
    assert (
        message == "Your account has no POSIX identity yet, so no server was started; sign out and in again."
    )
    assert objects_in(control_plane, restricted_namespace) == {"pods": [], "configmaps": []}
    # JupyterHub 6 labels each refusal with its reason in the spawn metric (SpawnException); 5.x's metric
    # has only a status label, and every refusal counts as a failure there.
    failures = await _spawn_failures(hub)
    if HAS_SPAWN_EXCEPTION:
        assert failures == {"hubkit-refused": len(cases), "hubkit-identity": 1}
    else:
        assert failures == {"": len(cases) + 1}


async def _spawn_failures(hub: Hub) -> dict[str, int]:
    """Failed spawns by reason label, from the hub's /hub/metrics."""
    async with hub.client(headers={"Authorization": f"token {hub.admin_token}"}) as c:
        r = await c.get("/hub/metrics")
    r.raise_for_status()
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            failed = sample.labels.get("status") == "failure" and sample.value
            if sample.name == "jupyterhub_server_spawn_duration_seconds_count" and failed:
                counts[sample.labels.get("reason", "")] = int(sample.value)
    return counts


async def test_instructor_spawn_runs_as_identity_with_nss_and_fresh_overrides(
    hubkit_hub: HubMaker, control_plane: ControlPlane, restricted_namespace: str
) -> None:
    hub = hubkit_hub(PROFILE_CONFIG)
    client = await hub.login("instructor")
    await client.aclose()
    ident = INSTRUCTOR["hubkit"]
    ns = restricted_namespace

    await hub.start_server("instructor", {"profile": "course", "image": "grader"}, timeout=120)
    pod = control_plane.request("GET", f"/api/v1/namespaces/{ns}/pods/jupyter-instructor")
    spec = pod["spec"]
    assert spec["securityContext"]["runAsUser"] == ident["uid"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sorted(spec["securityContext"]["supplementalGroups"]) == [30100, 2871009]
    container = spec["containers"][0]
    assert container["image"] == "jupyter/minimal-notebook:grader"
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    cm = control_plane.request("GET", f"/api/v1/namespaces/{ns}/configmaps/jupyter-instructor-nss")
    assert "instructor:x:583231:583231:github_583231:/home/jovyan:/bin/bash" in cm["data"]["passwd"]
    assert "my-org-gpu-users:x:2871009:instructor" in cm["data"]["group"]
    assert cm["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]

    pid = _pid(pod)
    status = Path(f"/proc/{pid}/status").read_text()
    assert f"Uid:\t{ident['uid']}\t" in status
    assert f"Gid:\t{ident['gid']}\t" in status
    env = _environ(pid)
    assert (env["COURSE"], env["GRADER"]) == ("ds100", "1")
    groups = [ident["gid"], 30100, 2871009]
    assert _in_pod(pid, ident["uid"], ident["gid"], groups, "whoami") == "instructor"
    assert _in_pod(pid, ident["uid"], ident["gid"], groups, "id") == (
        "uid=583231(instructor) gid=583231(instructor) groups=583231(instructor),30100(ds100),"
        "2871009(my-org-gpu-users)"
    )

    await hub.stop_server("instructor")
    assert objects_in(control_plane, ns) == {"pods": [], "configmaps": []}, "the NSS map goes with the pod"

    # The next spawn picks the other profile: nothing of the previous one may leak in.
    await hub.start_server("instructor", {"profile": "research"}, timeout=120)
    pod = control_plane.request("GET", f"/api/v1/namespaces/{ns}/pods/jupyter-instructor")
    env = _environ(_pid(pod))
    assert env["RESEARCH"] == "yes"
    assert "GRADER" not in env
    assert "COURSE" not in env
    assert pod["spec"]["containers"][0]["image"] == "quay.io/jupyterhub/singleuser:5.3"
    await hub.stop_server("instructor")
