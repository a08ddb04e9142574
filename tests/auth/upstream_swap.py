"""pytest plugin for upstream test suites: the class under test becomes the HubKit subclass.

Loaded with ``-p upstream_swap`` by test_upstream_suites.py; each test runs in its own working
directory, so HubKit's ledger (``sqlite:///jupyterhub.sqlite``) is fresh per test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hubkit.auth.cilogon import HubKitCILogonAuthenticator
from hubkit.auth.github import HubKitGitHubAuthenticator

SWAPS = {
    "oauthenticator.tests.test_github": ("GitHubOAuthenticator", HubKitGitHubAuthenticator),
    "oauthenticator.tests.test_cilogon": ("CILogonOAuthenticator", HubKitCILogonAuthenticator),
}


@pytest.fixture(autouse=True)
def _hubkit_class(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = request.module
    if module.__name__ in SWAPS:
        name, cls = SWAPS[module.__name__]
        monkeypatch.setattr(module, name, cls)
    monkeypatch.chdir(tmp_path)
