"""Each image's Python set, installed for real into a clean venv with the machine's Python (as the
Dockerfiles install it), and its entry points loaded, for every image including those whose base cannot be
made here (hub, single-user). The images that can be built here are built and run for real in
test_oci_build.py and test_oci_nfs_server.py. No Dockerfile linter is installable from the allowed registries
(hadolint is not in Debian), hence the policy checks below."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hubkit_testing.tools import REPO_ROOT

IMAGES = REPO_ROOT / "images"
PACKAGES = REPO_ROOT / "packages"
# zero-to-jupyterhub 4.4.0's frozen hub set (its k8s-hub image): the default hub image's base.
Z2JH_HUB_SET = IMAGES / "hub" / "z2jh-4.4.0" / "requirements.txt"


def _uv() -> str:
    cache = Path(os.environ.get("HUBKIT_CACHE", Path.home() / ".cache" / "hubkit"))
    found = shutil.which("uv") or str(cache / "bootstrap" / "bin" / "uv")
    assert Path(found).exists(), "uv is installed by the Makefile's bootstrap ($HUBKIT_CACHE/bootstrap)"
    return found


def _run(*argv: str | Path, timeout: float = 300) -> str:
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", UV_PYTHON=sys.executable)
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _venv_with(tmp_path: Path, requirements: Path, *local: Path) -> Path:
    """A clean venv with the image's pinned set (hashes checked), then HubKit's packages without deps."""
    venv = tmp_path / "venv"
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(_uv(), "pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", requirements)
    if local:
        _run(_uv(), "pip", "install", "--quiet", "--python", python, "--no-deps", *local)
    return venv


@pytest.mark.parametrize("image", ["hub-jupyterhub6", "services"])
def test_requirements_are_the_locked_set(image: str, tmp_path: Path) -> None:
    """images/<image>/requirements.txt is exactly what images/export-requirements.sh makes from uv.lock."""
    hub = ("hubkit-spawner", "hubkit-auth", "hubkit-services")
    packages = {"hub-jupyterhub6": hub, "services": ("hubkit-services",)}[image]
    # the hub also gets psycopg, so a postgresql:// hub database works (hubkit-auth[postgresql])
    selection = [arg for package in packages for arg in ("--package", package)]
    if image == "hub-jupyterhub6":
        selection += ["--extra", "postgresql"]
    out = tmp_path / "requirements.txt"
    args = [
        _uv(),
        "export",
        "--frozen",
        "--no-dev",
        "--no-emit-workspace",
        "--no-header",
        "-o",
        out,
        *selection,
    ]
    subprocess.run([str(a) for a in args], capture_output=True, check=True, cwd=REPO_ROOT)
    assert out.read_text() == (IMAGES / image / "requirements.txt").read_text(), (
        f"images/{image}/requirements.txt is stale: run images/export-requirements.sh"
    )


def _pins(text: str) -> dict[str, str]:
    """name -> version of the ``name==version`` lines of a requirements file (names normalized)."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text, re.M)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def _assert_hubkit_classes_load(venv: Path) -> None:
    """Every HubKit class is in ``jupyterhub --help-all``; the chart's entry-point names load."""
    help_all = _run(venv / "bin" / "jupyterhub", "--help-all", timeout=120)
    for name in (
        "HubKitSpawner",
        "HubKitGitHubAuthenticator",
        "HubKitCILogonAuthenticator",
        "HubKitLDAPAuthenticator",
        "HubKitLTI13Authenticator",
        "HubKitLTI11Authenticator",
        "HubKitMultiAuthenticator",
    ):
        assert name in help_all, f"{name} is not in jupyterhub --help-all"
    # The names the chart's jupyterhub_config.d files use load through the entry points.
    probe = (
        "from importlib.metadata import entry_points as eps\n"
        "hk = [e for e in eps(group='jupyterhub.authenticators') if e.name.startswith('hubkit-')]\n"
        "auth = {e.name: e.load().__name__ for e in hk}\n"
        "spawn = {e.name: e.load().__name__ for e in eps(group='jupyterhub.spawners')}\n"
        "print(' '.join(sorted(auth)), spawn['hubkit'])\n"
    )
    names = "hubkit-cilogon hubkit-github hubkit-ldap hubkit-lti11 hubkit-lti13 hubkit-multi"
    assert _run(venv / "bin" / "python", "-c", probe).strip() == f"{names} HubKitSpawner"


_PG_DRIVER = "import sqlalchemy as s; print(s.create_engine('postgresql://hub@db.invalid/jupyterhub').driver)"


def test_hub_jupyterhub6_set_installs_and_jupyterhub_lists_the_hubkit_classes(tmp_path: Path) -> None:
    venv = _venv_with(
        tmp_path,
        IMAGES / "hub-jupyterhub6" / "requirements.txt",
        PACKAGES / "spawner",
        PACKAGES / "auth",
        PACKAGES / "services",
    )
    assert _run(venv / "bin" / "jupyterhub", "--version").strip() == "6.1.1"
    _assert_hubkit_classes_load(venv)
    # A postgresql:// hub database URL finds its driver (SQLAlchemy 2.1 picks psycopg 3).
    assert _run(venv / "bin" / "python", "-c", _PG_DRIVER).strip() == "psycopg"


def test_hub_requirements_keep_every_pin_of_z2jh_hub_set() -> None:
    """images/hub/requirements.txt adds to z2jh 4.4.0's frozen set and moves none of its pins."""
    frozen = _pins(Z2JH_HUB_SET.read_text())
    ours = _pins((IMAGES / "hub" / "requirements.txt").read_text())
    moved = {
        name: (version, ours[name]) for name, version in frozen.items() if ours.get(name, version) != version
    }
    assert moved == {}, f"images/hub/requirements.txt moves z2jh's pins (z2jh, ours): {moved}"
    assert {"httpx", "icalendar"} <= ours.keys() - frozen.keys()


def test_hubkit_pip_installs_into_z2jh_hub_set_and_pip_check_passes(tmp_path: Path) -> None:
    """What images/hub/Dockerfile does, on a venv holding exactly z2jh 4.4.0's frozen hub set (what its
    k8s-hub image has): real pip installs HubKit's additions with that set as constraints, then the three
    distributions; ``pip check`` passes and JupyterHub is still 5.5.0, every frozen pin unchanged."""
    venv = tmp_path / "venv"
    _run(_uv(), "venv", "--quiet", "--seed", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(_uv(), "pip", "install", "--quiet", "--python", python, "-r", Z2JH_HUB_SET)
    pip = (python, "-m", "pip", "--disable-pip-version-check")
    _run(
        *pip,
        "install",
        "--quiet",
        "--require-hashes",
        "-c",
        Z2JH_HUB_SET,
        "-r",
        IMAGES / "hub" / "requirements.txt",
    )
    _run(
        *pip,
        "install",
        "--quiet",
        "--no-deps",
        PACKAGES / "spawner",
        PACKAGES / "auth",
        PACKAGES / "services",
    )
    assert "No broken requirements found" in _run(*pip, "check")
    assert _run(venv / "bin" / "jupyterhub", "--version").strip() == "5.5.0"
    installed = _pins(_run(*pip, "list", "--format=freeze"))
    frozen = _pins(Z2JH_HUB_SET.read_text())
    assert {name: installed.get(name) for name in frozen} == frozen
    assert {"hubkit-spawner", "hubkit-auth", "hubkit-services"} <= installed.keys()
    _assert_hubkit_classes_load(venv)
    # z2jh's psycopg2 drives a postgresql:// hub database (SQLAlchemy 2.0's default driver).
    assert _run(python, "-c", _PG_DRIVER).strip() == "psycopg2"


def test_services_set_installs_and_every_command_loads(tmp_path: Path) -> None:
    venv = _venv_with(tmp_path, IMAGES / "services" / "requirements.txt", PACKAGES / "services")
    for command in ("hubkit-culler", "hubkit-nfs-keepalive", "hubkit-prepuller", "hubkit-warmseats"):
        assert "--config" in _run(venv / "bin" / command, "--help")
    settings = tmp_path / "warmseats.yaml"
    settings.write_text("namespace: hubkit-system\nsizes: [{name: small, cpu: 500m, memory: 2Gi}]\n")
    printed = _run(venv / "bin" / "hubkit-warmseats", "--config", settings, "--print-scheduler-config")
    assert "schedulerName: hubkit-packing-scheduler" in printed
    assert "MostAllocated" in printed
    # No test-only or hub-only packages leak into the services image.
    listing = _run(_uv(), "pip", "list", "--python", venv / "bin" / "python")
    assert "oauthenticator" not in listing
    assert "pytest" not in listing
    assert "jupyterhub " not in listing  # the services use the hub's REST API, not its code
    assert "sqlalchemy" not in listing.lower()


def test_singleuser_set_installs_with_nbgitpuller(tmp_path: Path) -> None:
    """The set the CPU image adds to its scipy-notebook base (the scientific stack is the base's)."""
    venv = tmp_path / "venv"
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    _run(
        _uv(),
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        "-r",
        IMAGES / "singleuser" / "requirements.txt",
    )
    assert _run(venv / "bin" / "jupyterhub-singleuser", "--version").strip().startswith("6.1.1")
    _run(venv / "bin" / "jupyter", "server", "extension", "enable", "--sys-prefix", "nbgitpuller")
    listing = _run(venv / "bin" / "jupyter", "server", "extension", "list")
    listing += subprocess.run(
        [str(venv / "bin" / "jupyter"), "server", "extension", "list"], capture_output=True, text=True
    ).stderr
    listing = re.sub(r"\x1b\[[0-9;]*m", "", listing)  # colour codes
    assert re.search(r"nbgitpuller\s+enabled", listing), listing
    assert "nbgitpuller 1.3.0 OK" in listing


def test_singleuser_gpu_set_resolves(tmp_path: Path) -> None:
    """Resolve only: the GPU image adds the same set to a CUDA base (PyTorch and CUDA are the base's)."""
    out = tmp_path / "resolved.txt"
    _run(
        _uv(),
        "pip",
        "compile",
        "--quiet",
        "--python",
        sys.executable,
        "-o",
        out,
        IMAGES / "singleuser-gpu" / "requirements.txt",
    )
    resolved = out.read_text()
    assert "jupyterhub==6.1.1" in resolved
    assert "nbgitpuller==1.3.0" in resolved


@pytest.mark.parametrize(
    "image",
    [
        "hub",
        "hub-jupyterhub6",
        "services",
        "singleuser",
        "singleuser-slim",
        "singleuser-gpu",
        "nfs-ganesha",
        "proxy",
        "user-scheduler",
    ],
)
def test_dockerfile_policies(image: str) -> None:
    """Pinned bases, a non-root final user, no secrets, labels: the rules these Dockerfiles promise."""
    text = (IMAGES / image / "Dockerfile").read_text()
    # A base may come from an ARG (images/build-local.sh overrides it); its default is what releases use.
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
    bases = [
        re.sub(r"\$\{(\w+)\}", lambda m: defaults[m[1]], b) for b in re.findall(r"^FROM\s+(\S+)", text, re.M)
    ]
    assert bases
    for base in bases:
        assert re.search(r":[\w.-]*\d[\w.-]*$", base), f"{base} is not pinned to a versioned tag"
        assert not base.endswith(":latest")
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users
    if image == "nfs-ganesha":  # the one exception, and it must say why
        assert "Root is required" in text
    else:
        assert users[-1].split(":")[0] not in {"root", "0"}, "the image must end non-root"
    assert not re.search(r"^(ENV|ARG)\s+\S*(TOKEN|SECRET|PASSWORD|KEY)\S*=", text, re.M | re.I)
    assert "org.opencontainers.image.source" in text
    assert "HEALTHCHECK" in text
