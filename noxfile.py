"""HubKit's sessions. Run them through the Makefile (`make test`), which bootstraps uv and nox."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import tomllib
from pathlib import Path
from types import FrameType

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PLATFORM = ROOT / "tests" / "platform"
# zero-to-jupyterhub 4.4.0's hub image: its frozen Python set (JupyterHub 5.5.0, kubespawner 7.0.0, ...).
Z2JH_HUB_SET = ROOT / "images" / "hub" / "z2jh-4.4.0" / "requirements.txt"
WORKSPACE_PACKAGES = ("packages/spawner", "packages/auth", "packages/services", "tests/platform")
DEV_STOP_SECONDS = 120  # how long `make dev` may take to stop everything after Ctrl-C


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM to nox: pass it on to the process group (hubkit-dev stops), then wait like for Ctrl-C."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    raise KeyboardInterrupt


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the locked workspace (all three packages, editable) into the session's venv."""
    args = ["uv", "sync", "--locked", "--no-default-groups"]
    for group in groups:
        args += ["--group", group]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


def _platform_tools(session: nox.Session) -> None:
    """Debian packages, configurable-http-proxy from npm, and the Go-built control plane.

    Skipped when ``HUBKIT_PLATFORM_READY=1``: `make test` builds them once, then runs two sessions at once.
    """
    if os.environ.get("HUBKIT_PLATFORM_READY") == "1":
        return
    session.run("bash", str(PLATFORM / "sysdeps.sh"), external=True)
    _npm_install(session)
    session.run("bash", str(PLATFORM / "go" / "build.sh"), external=True, silent=True)


def _npm_install(session: nox.Session) -> None:
    """`npm ci` only when package-lock.json changed: it wipes node_modules first, which would pull
    configurable-http-proxy from under a hub of another run (`make dev` next to `make test`)."""
    npm = PLATFORM / "npm"
    lock = hashlib.sha256((npm / "package-lock.json").read_bytes()).hexdigest()
    stamp = npm / "node_modules" / ".hubkit-lock-sha256"
    if stamp.is_file() and stamp.read_text() == lock:
        return
    session.run("npm", "ci", "--silent", "--no-audit", "--no-fund", "--prefix", str(npm), external=True)
    stamp.write_text(lock)


def _pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by normalized name (to the whole line)."""
    pins = {}
    for line in text.splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^]]*\])?==", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = line.split(" \\")[0].strip()
    return pins


def _z2jh_set(session: nox.Session) -> None:
    """Exactly z2jh 4.4.0's frozen hub set (as constraints too), plus HubKit (editable) and the test group.

    Packages outside the frozen set prefer their uv.lock versions (where the frozen set allows them: some
    locked versions need newer pins than z2jh's). The frozen pins win where the test group disagrees (its
    jupyterhub-idle-culler 2.0.0 becomes z2jh's 1.4.0). Compiled, then synced: nothing else stays in the venv.
    """
    frozen = _pins(Z2JH_HUB_SET.read_text())
    work = Path(session.virtualenv.location)
    locked = session.run_install(
        "uv", "export", "--frozen", "--all-packages", "--no-default-groups", "--group", "test",
        "--no-emit-workspace", "--no-hashes", "--no-header", "--no-annotate", silent=True,
    )  # fmt: skip
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["test"]
    wanted = [req for req in group if not _pins(req).keys() & frozen.keys()]
    wanted += [f"-e {ROOT / package}" for package in WORKSPACE_PACKAGES]
    (work / "requirements.in").write_text("\n".join(wanted) + "\n")
    # uv pip compile takes the versions already in its output file as preferences.
    resolved = work / "requirements.txt"
    preferred = [line for name, line in _pins(str(locked)).items() if name not in frozen]
    resolved.write_text("\n".join([*frozen.values(), *preferred]) + "\n")
    session.run_install(
        "uv", "pip", "compile", "--quiet", "--python", session.virtualenv.location, "-o", resolved,
        work / "requirements.in", Z2JH_HUB_SET, "-c", Z2JH_HUB_SET,
    )  # fmt: skip
    session.run_install("uv", "pip", "sync", "--quiet", "--python", session.virtualenv.location, resolved)


@nox.session(python=False)
def platform(session: nox.Session) -> None:
    """Build and install the hermetic platform's tools only."""
    _platform_tools(session)


@nox.session
def test(session: nox.Session) -> None:
    """The whole test suite on the hermetic platform. Extra arguments go to pytest."""
    _platform_tools(session)
    _sync(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
def test_z2jh(session: nox.Session) -> None:
    """The tests that start a real JupyterHub again, on z2jh 4.4.0's hub set (JupyterHub 5.5.0) + HubKit.
    `make test` runs it next to `test`; pytest arguments go to both."""
    _z2jh_set(session)
    _platform_tools(session)
    session.run("pytest", "--hub-tests-only", *session.posargs, success_codes=[0, 5])  # 5: none selected


@nox.session
def chart(session: nox.Session) -> None:
    """The Helm chart (tests/chart): helm lint and template of every example, server-side dry run of every
    object on the hermetic API server, the hub configuration files in a real JupyterHub."""
    _platform_tools(session)
    _sync(session, "test")
    session.run("pytest", "tests/chart", *session.posargs)


@nox.session
def dev(session: nox.Session) -> None:
    """A local hub at http://127.0.0.1:8000 on the hermetic platform; Ctrl-C tears it down."""
    _platform_tools(session)
    _sync(session, "test")
    # Ctrl-C reaches hubkit-dev with the whole process group; give it time to stop the control plane
    # (nox would otherwise kill it 0.5 s later and orphan etcd, the API server, kwok, the kubelet).
    # SIGTERM to nox is handled the same way.
    signal.signal(signal.SIGTERM, _interrupt)
    session.run("hubkit-dev", *session.posargs, interrupt_timeout=DEV_STOP_SECONDS, terminate_timeout=10)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on the packages and the test platform."""
    _sync(session, "test", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in bench/ (or the one named: `make bench NAME=culler`)."""
    _platform_tools(session)
    _sync(session, "test")
    names = [n for n in session.posargs if n] or sorted(p.stem for p in (ROOT / "bench").glob("*.py"))
    if not names:
        session.error("bench/ holds no benchmarks yet.")
    for name in names:
        script = ROOT / "bench" / f"{name}.py"
        if not script.is_file():
            session.error(f"No benchmark named {name!r}: expected {script.relative_to(ROOT)}.")
        session.run("python", str(script), env={"PYTHONUNBUFFERED": "1"})
