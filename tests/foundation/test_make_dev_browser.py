"""`make dev` as a person uses it (Chromium): the LMS course page, different spawn forms for a student
and an instructor, JupyterLab; then Ctrl-C (SIGINT to make's process group) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from hubkit_testing.browser import screenshot
from hubkit_testing.processes import free_port, port_is_open

REPO = Path(__file__).resolve().parents[2]
PLATFORM_NAMES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubelet")


def _descendants(root: int) -> dict[int, str]:
    """pid → command line of every live process below ``root`` (any session)."""
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        cmdlines[int(entry.name)] = cmdline.strip()
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = cmdlines.get(pid, "")
        todo.extend(children.get(pid, []))
    return found


def _alive(pids: dict[int, str]) -> dict[int, str]:
    alive = {}
    for pid, cmdline in pids.items():
        try:
            now = (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode(errors="replace")
        except OSError:
            continue
        if now.strip() == cmdline:
            alive[pid] = cmdline
    return alive


@dataclass(frozen=True)
class DevRun:
    make: subprocess.Popen[bytes]
    port: int
    lms_port: int
    log_path: Path


def _start_make_dev(tmp_path: Path) -> DevRun:
    """`make dev` in its own session on free ports, once it says it is up (stopped if it never does)."""
    port, lms_port = free_port(), free_port()
    log_path = tmp_path / "make-dev.log"
    args = f"--port {port} --lms-port {lms_port} --workdir {tmp_path / 'dev'}"
    with log_path.open("w") as log:
        make = subprocess.Popen(
            ["make", "dev", f"ARGS={args}"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while "Press Ctrl-C" not in log_path.read_text():
            assert make.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "make dev did not come up in 600 s"
            time.sleep(1)
    except BaseException:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(180)
        raise
    return DevRun(make, port, lms_port, log_path)


def _assert_stopped(dev: DevRun, started: dict[int, str]) -> None:
    """make dev said it stopped everything, nox succeeded, and no process it started or port is left."""
    output = dev.log_path.read_text()
    assert "Stopped; nothing is left running." in output
    assert "Session dev was successful" in output, output[-2000:]
    assert _alive(started) == {}
    assert not port_is_open("127.0.0.1", dev.port)
    assert not port_is_open("127.0.0.1", dev.lms_port)


async def _spawn_form(page: Page, lms_url: str, role: str, shot: str) -> list[str]:
    await page.goto(lms_url)
    await page.click(f"button:has-text('Launch as {role} of Sample Course 101 (LTI 1.1)')")
    await page.wait_for_url("**/hub/spawn**")
    await screenshot(page, shot)
    return list(await page.locator("input[name=profile]").evaluate_all("es => es.map(e => e.value)"))


@pytest.mark.browser
async def test_make_dev_shows_hubkit_and_ctrl_c_stops_everything(tmp_path: Path, browser: Browser) -> None:
    dev = _start_make_dev(tmp_path)
    make = dev.make
    started: dict[int, str] = {}
    try:
        lms = f"http://127.0.0.1:{dev.lms_port}"

        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await page.goto(lms)
        await screenshot(page, "make-dev-lms-course-page")
        # One launch button per way in (student/instructor x LTI 1.1/1.3), and the LTI Advantage ones.
        assert await page.locator("button:has-text('Launch as')").count() == 4
        assert await page.locator("button:has-text('Add a Jupyter link')").count() == 1
        assert await page.locator("button:has-text('Open the hub inside this course page')").count() == 1
        assert await page.locator("button").count() == 6
        await page.close()

        student_context = await browser.new_context(viewport={"width": 1100, "height": 900})
        instructor_context = await browser.new_context(viewport={"width": 1100, "height": 900})
        try:
            student = await student_context.new_page()
            instructor = await instructor_context.new_page()
            assert await _spawn_form(student, lms, "student", "make-dev-form-student") == ["course"]
            assert await _spawn_form(instructor, lms, "instructor", "make-dev-form-instructor") == [
                "course",
                "gpu",
            ]
            # The student starts the course profile: JupyterLab opens, with the course directory.
            await student.click("form [type=submit]")
            await student.wait_for_url("**/lab**", timeout=180_000)
            await student.wait_for_selector(".jp-Launcher", timeout=120_000)
            await screenshot(student, "make-dev-jupyterlab")
            assert "JupyterLab" in await student.title() or await student.locator(".jp-LabShell").count() == 1
        finally:
            await student_context.close()
            await instructor_context.close()

        started = _descendants(make.pid)
        names = " ".join(started.values())
        for name in (*PLATFORM_NAMES, "jupyterhub", "configurable-http-proxy", "jupyterhub-singleuser"):
            assert name in names, f"{name} not found among make dev's processes: {sorted(started.values())}"
    finally:
        os.killpg(make.pid, signal.SIGINT)
        make.wait(180)
    _assert_stopped(dev, started)


def test_sigterm_to_make_dev_stops_everything(tmp_path: Path) -> None:
    """`kill <make's pid>` (SIGTERM, not to the group): make passes it on, nox waits for the full stop."""
    dev = _start_make_dev(tmp_path)
    make = dev.make
    started: dict[int, str] = {}
    try:
        started = _descendants(make.pid)
        names = " ".join(started.values())
        for name in (*PLATFORM_NAMES, "jupyterhub", "configurable-http-proxy", "docker-registry"):
            assert name in names, f"{name} not found among make dev's processes: {sorted(started.values())}"
    finally:
        make.send_signal(signal.SIGTERM)
        make.wait(180)
    _assert_stopped(dev, started)
