"""The NFS server image built for real (images/build-local.sh nfs-ganesha: images/nfs-ganesha/Dockerfile over
a Debian base made here), run with podman exactly as the chart's hubkit-nfs Deployment runs it (its rendered
ganesha.conf, init container, capabilities and mounts), and used as an NFSv4 server by a userspace client
(libnfs) from the host: users' files keep their owners, and one user cannot write into another's home."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart._chart import chart_with_z2jh, render

from hubkit_testing.processes import free_port

from ._pods import PodRun, build_local_image, run


@pytest.fixture(scope="module")
def image() -> str:
    return build_local_image("nfs-ganesha")


def _render(tmp_path: Path) -> list[dict[str, Any]]:
    values = tmp_path / "values.yaml"
    # Grace period 0: a fresh server has no clients to wait for, and the test need not wait it out.
    values.write_text(
        yaml.safe_dump({"nfs": {"enabled": True, "namespace": "hubkit-nfs", "gracePeriodSeconds": 0}})
    )
    return render(chart_with_z2jh(tmp_path), values, "hubkit-system")


@pytest.fixture
def server(image: str, tmp_path: Path) -> Iterator[tuple[PodRun, int]]:
    objects = _render(tmp_path)
    data = tmp_path / "data"  # the hubkit-nfs-data claim
    data.mkdir()
    port = free_port()
    pod = PodRun(
        objects, "hubkit-nfs", image, tmp_path, claims={"hubkit-nfs-data": data}, publish={2049: port}
    )
    pod.run("prepare", init=True)
    with pod.started("ganesha") as name:
        # Ready when a client gets an answer: the published port accepts before Ganesha listens.
        deadline = time.monotonic() + 30
        while subprocess.run(["nfs-ls", _url(port, "")], capture_output=True, timeout=10).returncode != 0:
            assert time.monotonic() < deadline, run("podman", "logs", name)[-3000:]
            time.sleep(0.5)
        yield pod, port


def _url(port: int, path: str, uid: int = 0, gid: int = 0) -> str:
    return f"nfs://127.0.0.1/homes/{path}?version=4&nfsport={port}&uid={uid}&gid={gid}"


def test_chart_runs_the_image_with_the_capabilities_it_declares(image: str, tmp_path: Path) -> None:
    pod = PodRun(_render(tmp_path), "hubkit-nfs", image, tmp_path, claims={"hubkit-nfs-data": tmp_path})
    argv = pod.argv(pod.container("ganesha"))
    assert "--cap-drop=all" in argv
    assert "--cap-add=DAC_READ_SEARCH" in argv
    assert "--security-opt=no-new-privileges" in argv


def test_homes_keep_their_owners_and_stay_private(server: tuple[PodRun, int], tmp_path: Path) -> None:
    pod, port = server
    data = pod.claims["hubkit-nfs-data"]
    # What the init container prepared, as the keepalive expects it.
    keepalive = data / ".hubkit"
    assert keepalive.is_dir()
    assert (keepalive.stat().st_uid, keepalive.stat().st_mode & 0o777) == (65534, 0o700)
    assert (data / ".ganesha-recovery").is_dir()

    # Homes as the spawner makes them: owned by the user, private.
    for uid in (1000, 1001):
        home = data / f"u{uid}"
        home.mkdir()
        home.chmod(0o700)
        os.chown(home, uid, 100)
    notebook = tmp_path / "notebook.ipynb"
    notebook.write_text('{"cells": []}\n')
    run("nfs-cp", notebook, _url(port, "u1000/notebook.ipynb", 1000, 100))
    stored = data / "u1000" / "notebook.ipynb"
    assert stored.read_text() == '{"cells": []}\n'
    assert (stored.stat().st_uid, stored.stat().st_gid) == (1000, 100)
    assert run("nfs-cat", _url(port, "u1000/notebook.ipynb", 1000, 100)) == '{"cells": []}\n'
    listing = run("nfs-ls", _url(port, "u1000", 1000, 100))
    assert "notebook.ipynb" in listing

    # Another user can neither write into nor read that home.
    denied = subprocess.run(
        ["nfs-cp", str(notebook), _url(port, "u1000/intruder.ipynb", 1001, 100)],
        capture_output=True,
        text=True,
    )
    assert denied.returncode != 0
    assert "NFS4ERR_ACCESS" in denied.stdout + denied.stderr
    assert not (data / "u1000" / "intruder.ipynb").exists()
    peek = subprocess.run(["nfs-ls", _url(port, "u1000", 1001, 100)], capture_output=True, text=True)
    assert peek.returncode != 0
    assert "notebook.ipynb" not in peek.stdout
