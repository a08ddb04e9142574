"""oauthenticator 17.4.0's own GitHub and CILogon tests, run against HubKit's subclasses (issue 21).

The suite comes from the released sdist on PyPI (pinned by version and sha256, fetched with pip into
``$HUBKIT_CACHE/upstream``), runs unchanged in a subprocess with ``upstream_swap`` swapping the class
under test, and every failure must be one listed in ``KNOWN`` (mirrored in docs/auth.md,
"Differences from upstream"). ldapauthenticator 2.0.2 and ltiauthenticator 1.6.3 ship no tests in their
sdists, so their suites (read at the git tags) are mirrored scenario by scenario instead, in
test_ldap_upstream_suite.py, test_lti11_upstream_suite.py and test_lti13_upstream_suite.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SDIST = ("oauthenticator", "17.4.0", "b1025d725dc406977299c87fedea2006fcabac3bea9d4e17f690d4dad044923e")
CACHE = Path(os.environ.get("HUBKIT_CACHE", Path.home() / ".cache" / "hubkit")) / "upstream"
MODULES = ("oauthenticator/tests/test_github.py", "oauthenticator/tests/test_cilogon.py")
# test id prefix -> why HubKit differs (docs/auth.md, "Differences from upstream")
KNOWN = {
    "test_cilogon.py::test_cilogon[": "the mock returns no id_token; HubKit verifies CILogon's id_token",
    "test_cilogon.py::test_cilogon_idps[": "the mock returns no id_token; HubKit verifies CILogon's id_token",
    "test_cilogon.py::test_idps_username_derivation_actions": "no id_token in the mock (as above)",
    "test_cilogon.py::test_deprecated_config[": "warnings name the subclass (HubKitCILogonAuthenticator)",
    "test_github.py::test_deprecated_config[": "warnings name the subclass (HubKitGitHubAuthenticator)",
    "test_github.py::test_github[": "JupyterHub 6 adds user_info to the auth model (upstream fails too)",
    "test_github.py::test_allowed_org_membership": "HubKit reads memberships from /user/memberships/orgs",
}


def _sdist() -> Path:
    name, version, sha256 = SDIST
    source = CACHE / f"{name}-{version}"
    if (source / "oauthenticator" / "tests").is_dir():
        return source
    CACHE.mkdir(parents=True, exist_ok=True)
    pip = (
        Path(os.environ.get("HUBKIT_CACHE", Path.home() / ".cache" / "hubkit")) / "bootstrap" / "bin" / "pip"
    )
    subprocess.run(
        [
            str(pip),
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{name}=={version}",
            "-d",
            str(CACHE),
        ],
        check=True,
        timeout=300,
    )
    archive = CACHE / f"{name}-{version}.tar.gz"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != sha256:
        archive.unlink()
        raise AssertionError(f"{archive.name} has sha256 {digest}, not the pinned {sha256}.")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return source


@pytest.mark.timeout(600)
def test_oauthenticator_suite_passes_but_for_the_listed_differences(tmp_path: Path) -> None:
    source = _sdist()
    report = tmp_path / "junit.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(source), str(Path(__file__).parent)])}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            os.devnull,
            "--rootdir",
            str(source),
            "-p",
            "upstream_swap",
            "-p",
            "no:cacheprovider",
            "-q",
            "--asyncio-mode=auto",
            f"--junitxml={report}",
            *(str(source / m) for m in MODULES),
        ],
        cwd=tmp_path,
        env=env,
        timeout=600,
        check=False,
        capture_output=True,
    )
    cases = ET.parse(report).getroot().iter("testcase")
    passed, unexplained = 0, []
    for case in cases:
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{case.get('name')}"
        if case.find("failure") is None and case.find("error") is None and case.find("skipped") is None:
            passed += 1
        elif not any(test_id.startswith(prefix) for prefix in KNOWN):
            unexplained.append(test_id)
    assert not unexplained, f"upstream tests failing for reasons not in the differences table: {unexplained}"
    assert passed >= 17, f"only {passed} upstream tests passed (17 when this was written)"
