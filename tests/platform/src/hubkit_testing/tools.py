"""Where the platform's external tools are: Go-built binaries, configurable-http-proxy, Debian programs."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

from .processes import PlatformError

PLATFORM_DIR = Path(__file__).resolve().parents[2]  # tests/platform
REPO_ROOT = PLATFORM_DIR.parents[1]


@cache
def go_bin_dir() -> Path:
    """The directory of the Go-built binaries; builds them (once per version set) if needed."""
    build = PLATFORM_DIR / "go" / "build.sh"
    result = subprocess.run(["bash", str(build)], capture_output=True, text=True)
    if result.returncode != 0:
        raise PlatformError(f"Building the platform's Go tools failed ({build}):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def go_tool(name: str) -> str:
    return str(go_bin_dir() / name)


@cache
def go_component_dir(component: str) -> Path:
    """The directory of one separately cached Go component (``build.sh <component>``), built if needed."""
    build = PLATFORM_DIR / "go" / "build.sh"
    result = subprocess.run(["bash", str(build), component], capture_output=True, text=True)
    if result.returncode != 0:
        raise PlatformError(f"Building {component} failed ({build} {component}):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def go_component(component: str, binary: str) -> str:
    return str(go_component_dir(component) / binary)


def proxy_command() -> str:
    """configurable-http-proxy from tests/platform/npm (installed by `npm ci` in the nox sessions)."""
    path = PLATFORM_DIR / "npm" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not path.exists():
        raise PlatformError(
            f"configurable-http-proxy is not installed at {path}; run `make test` or "
            "`npm ci --prefix tests/platform/npm`."
        )
    return str(path)


def system_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise PlatformError(f"{name} is not installed; run `bash tests/platform/sysdeps.sh`.")
    return found


@cache
def singleuser_env() -> Path:
    """The single-user "image" venv (see singleuser-image.sh); built once per requirements hash."""
    script = PLATFORM_DIR / "singleuser-image.sh"
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if result.returncode != 0:
        raise PlatformError(
            f"Building the single-user image venv failed ({script}):\n{result.stderr[-3000:]}"
        )
    return Path(result.stdout.strip().splitlines()[-1])
