"""``hubkit-warmseats`` as an operator runs it: settings file in, placeholders and a status server out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from _http import get
from _warmseat_fixtures import wait_for

from hubkit_testing.controlplane import ControlPlane
from hubkit_testing.processes import free_port

COMMAND = str(Path(sys.executable).with_name("hubkit-warmseats"))


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HUBKIT_WARMSEATS_")}


def test_command_keeps_the_baseline_and_serves_status(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "warmseats.yaml"
    settings: dict[str, Any] = {
        "namespace": namespace,
        "kubeconfig": str(control_plane.admin_kubeconfig),
        "listen_host": "127.0.0.1",
        "listen_port": port,
        "sizes": [{"name": "cmd-small", "cpu": "100m", "memory": "128Mi", "baseline": 2}],
    }
    config.write_text(yaml.safe_dump(settings))
    log = tmp_path / "warmseats.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [COMMAND, "--config", str(config)], stdout=out, stderr=subprocess.STDOUT, env=clean_env()
        )
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/warmseat-cmd-small"
    try:
        wait_for(lambda: get(port, "/health")[0] == 200, 30, "healthy")
        deployment = control_plane.request("GET", path)
        assert deployment["spec"]["replicas"] == 2
        status = json.loads(get(port, "/status")[1])
        assert status["sizes"][0]["planned"] == 2
        assert status["sizes"][0]["terms"]["baseline"] == 2
        metrics = get(port, "/metrics")[1].decode()
        assert 'hubkit_warmseats_planned{size="cmd-small"} 2.0' in metrics
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, log.read_text()
    assert "warm seats cmd-small: None -> 2" in log.read_text()
    control_plane.request("DELETE", path)


def test_print_scheduler_config_gives_a_kube_scheduler_configuration(tmp_path: Path) -> None:
    config = tmp_path / "s.json"
    config.write_text(json.dumps({"namespace": "x", "sizes": [{"name": "a", "cpu": "1", "memory": "1Gi"}]}))
    out = subprocess.run(
        [COMMAND, "--config", str(config), "--print-scheduler-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=True,
    ).stdout
    doc = yaml.safe_load(out)
    assert doc["kind"] == "KubeSchedulerConfiguration"
    assert doc["profiles"][0]["schedulerName"] == "hubkit-packing-scheduler"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"namespace": "x", "sizes": [{"name": "a", "cpu": "1", "memory": "1Gi"}], "baselin": 3}, "baselin"),
        (
            {"namespace": "x", "sizes": [{"name": "a", "cpu": "1", "memory": "1Gi", "baseline": -1}]},
            "baseline",
        ),
        ({"namespace": "x", "sizes": []}, "sizes"),
    ],
)
def test_bad_settings_exit_2_with_one_line_and_create_nothing(
    control_plane: ControlPlane, namespace: str, tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    settings = {**settings, "namespace": namespace, "kubeconfig": str(control_plane.admin_kubeconfig)}
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(settings))
    result = subprocess.run(
        [COMMAND, "--config", str(config)], capture_output=True, text=True, timeout=60, env=clean_env()
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    items = control_plane.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"]
    assert items == []


def test_missing_settings_file_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [COMMAND, "--config", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert result.returncode == 2
    assert "cannot read settings file" in result.stderr
