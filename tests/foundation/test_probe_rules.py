"""The pure rules of the process kubelet: probe verdicts, restart decisions and back-off, which image a
container runs in image mode and the podman command line built for it."""

from __future__ import annotations

import json

import pytest

from hubkit_testing.container_init import Mount
from hubkit_testing.image_run import ImageRun, ImageRunError, local_image, parse_image_map, podman_argv
from hubkit_testing.podstatus import ContainerState, pod_phase, pod_status
from hubkit_testing.probes import (
    ProbeConfigError,
    ProbeTracker,
    backoff_seconds,
    container_probes,
    http_success,
    next_backoff,
    parse_probe,
    resolve_port,
    should_restart,
)


def test_probe_defaults_are_the_apis() -> None:
    probe = parse_probe("readinessProbe", {"httpGet": {"path": "/health", "port": 80}}, "web")
    assert (probe.initial_delay, probe.period, probe.timeout) == (0, 10, 1)
    assert (probe.success_threshold, probe.failure_threshold) == (1, 3)
    assert probe.action == "httpGet"
    assert probe.handler == {"path": "/health", "port": 80}


def test_readiness_needs_consecutive_successes_and_failures() -> None:
    spec = {"tcpSocket": {"port": 80}, "successThreshold": 2, "failureThreshold": 2}
    tracker = ProbeTracker(parse_probe("readinessProbe", spec, "web"))
    assert tracker.result is False  # not ready before the first verdict
    assert [tracker.record(ok) for ok in (True, False, True, True)] == [False, False, False, True]
    assert [tracker.record(ok) for ok in (False, True, False, False)] == [True, True, True, False]


def test_liveness_starts_passing_and_fails_after_the_threshold() -> None:
    tracker = ProbeTracker(parse_probe("livenessProbe", {"exec": {"command": ["true"]}}, "web"))
    assert tracker.result is True
    assert [tracker.record(False) for _ in range(3)] == [True, True, False]


def test_startup_probe_is_not_started_until_it_passes() -> None:
    tracker = ProbeTracker(
        parse_probe("startupProbe", {"tcpSocket": {"port": 1}, "failureThreshold": 30}, "a")
    )
    assert tracker.result is False
    assert tracker.record(True) is True


def test_first_attempt_waits_the_initial_delay_then_the_period() -> None:
    spec = {"tcpSocket": {"port": 80}, "initialDelaySeconds": 5, "periodSeconds": 2}
    tracker = ProbeTracker(parse_probe("readinessProbe", spec, "web"))
    assert [tracker.next_delay(n) for n in range(3)] == [5, 2, 2]


def test_unsupported_or_invalid_probes_are_refused_with_a_sentence() -> None:
    with pytest.raises(ProbeConfigError, match="readinessProbe of container web uses grpc"):
        parse_probe("readinessProbe", {"grpc": {"port": 9000}}, "web")
    with pytest.raises(ProbeConfigError, match="livenessProbe of container web must have successThreshold 1"):
        parse_probe("livenessProbe", {"tcpSocket": {"port": 1}, "successThreshold": 2}, "web")


def test_container_probes_by_kind_and_named_ports() -> None:
    container = {
        "name": "hub",
        "ports": [{"name": "http", "containerPort": 8081}],
        "readinessProbe": {"httpGet": {"path": "/hub/health", "port": "http"}},
        "livenessProbe": {"httpGet": {"path": "/hub/health", "port": "http"}, "initialDelaySeconds": 300},
    }
    probes = container_probes(container)
    assert sorted(probes) == ["livenessProbe", "readinessProbe"]
    assert resolve_port(probes["readinessProbe"].handler["port"], container) == 8081
    assert resolve_port("8000", container) == 8000
    with pytest.raises(ProbeConfigError, match="no port named 'https'"):
        resolve_port("https", container)


def test_http_success_is_2xx_and_3xx() -> None:
    assert [http_success(s) for s in (199, 200, 302, 399, 400, 503)] == [
        False,
        True,
        True,
        True,
        False,
        False,
    ]


def test_restart_policy() -> None:
    assert [should_restart("Always", code) for code in (0, 1)] == [True, True]
    assert [should_restart("OnFailure", code) for code in (0, 2)] == [False, True]
    assert not should_restart("Never", 1)


def test_backoff_doubles_from_ten_seconds_up_to_five_minutes_and_resets_after_a_long_run() -> None:
    assert [backoff_seconds(n) for n in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert next_backoff(0, 1) == (10, 1)
    assert next_backoff(3, 1) == (80, 4)
    assert next_backoff(5, 700) == (10, 1)  # a run of over 10 minutes starts the back-off over


def test_pod_is_ready_only_when_every_running_container_passes_readiness() -> None:
    web = ContainerState("web", "img", pid=10, started_at="t")
    side = ContainerState("side", "img", pid=11, started_at="t", probe_ready=False)
    status = pod_status("Running", "10.244.0.2", "10.244.0.1", "t", [web, side])
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert (ready["Ready"], ready["ContainersReady"]) == ("False", "False")
    assert [c["ready"] for c in status["containerStatuses"]] == [True, False]
    side.probe_ready = True
    status = pod_status("Running", "10.244.0.2", "10.244.0.1", "t", [web, side])
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"


def test_crash_loop_status_keeps_the_last_run() -> None:
    state = ContainerState("main", "img", restart_count=2, waiting=("CrashLoopBackOff", "back-off 40s"))
    state.last_terminated = {"exitCode": 1, "reason": "Error"}
    status = state.as_status()
    assert status["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}
    assert status["lastState"] == {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert status["restartCount"] == 2
    assert status["ready"] is False


def test_pod_phase_ends_when_every_container_ended_for_good() -> None:
    a = ContainerState("a", "img", pid=1, exit_code=0, final=True)
    b = ContainerState("b", "img", pid=2)
    assert pod_phase([a, b]) == "Running"
    b.exit_code, b.final = 0, True
    assert pod_phase([a, b]) == "Succeeded"
    b.exit_code = 3
    assert pod_phase([a, b]) == "Failed"


def test_local_image_and_image_map() -> None:
    image_map = parse_image_map(
        [
            "quay.io/jupyterhub/k8s-hub=localhost/hubkit-local/hub:k1",
            "busybox:1.36=localhost/hubkit-local/bb:k2",
        ]
    )
    assert local_image("quay.io/jupyterhub/k8s-hub:4.4.0", image_map) == "localhost/hubkit-local/hub:k1"
    assert local_image("busybox:1.36", image_map) == "localhost/hubkit-local/bb:k2"
    assert local_image("busybox:1.37", image_map) is None
    assert local_image("localhost/hubkit-local/services:abc", {}) == "localhost/hubkit-local/services:abc"
    assert local_image("localhost:5000/jupyter/datascience:2024.01", image_map) is None
    with pytest.raises(ImageRunError, match="is not NAME=LOCAL_IMAGE"):
        parse_image_map(["quay.io/jupyterhub/k8s-hub"])


def _run(container: dict[str, object], pod_security: dict[str, object] | None = None) -> list[str]:
    return podman_argv(
        ImageRun(
            name="hk0-abc-web-1",
            image="localhost/hubkit-local/services:k",
            netns_path="/run/netns/hk0-abc",
            hostname="web",
            env_file="/sandbox/web.env",
            container={"name": "web", **container},
            pod_security=pod_security or {},
            mounts=[Mount("/sandbox/volumes/cfg", "/etc/cfg", read_only=True), Mount("/data", "/srv")],
        )
    )


def test_podman_command_line_follows_the_container_spec() -> None:
    argv = _run(
        {
            "command": ["python3", "-m", "http.server"],
            "args": ["8080"],
            "workingDir": "/srv",
            "securityContext": {
                "runAsUser": 1234,
                "runAsGroup": 2345,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
            },
        },
        {"fsGroup": 3456, "supplementalGroups": [4567]},
    )
    assert argv[:2] == ["podman", "run"]
    for expected in (
        "--network=ns:/run/netns/hk0-abc",
        "--name=hk0-abc-web-1",
        "--env-file=/sandbox/web.env",
        "--user=1234:2345",
        "--group-add=4567",
        "--group-add=3456",
        "--read-only",
        "--security-opt=no-new-privileges",
        "--cap-drop=all",
        "--cap-add=net_bind_service",
        "--workdir=/srv",
        "--volume=/sandbox/volumes/cfg:/etc/cfg:ro",
        "--volume=/data:/srv",
        "--pull=never",
    ):
        assert expected in argv
    # command replaces the image's entrypoint (and its CMD); args follow the image reference.
    assert "--entrypoint=" + json.dumps(["python3", "-m", "http.server"]) in argv
    assert argv[-2:] == ["localhost/hubkit-local/services:k", "8080"]


def test_podman_command_line_keeps_the_images_entrypoint_and_user_by_default() -> None:
    argv = _run({"args": ["--help"]})
    assert not [a for a in argv if a.startswith(("--entrypoint", "--user", "--read-only"))]
    assert argv[-2:] == ["localhost/hubkit-local/services:k", "--help"]


def test_podman_refuses_what_it_cannot_honour() -> None:
    with pytest.raises(ImageRunError, match=r"securityContext fields \['seLinuxOptions'\]"):
        _run({"securityContext": {"seLinuxOptions": {"level": "s0"}}})
    with pytest.raises(ImageRunError, match="runAsGroup without runAsUser"):
        _run({"securityContext": {"runAsGroup": 5}})
