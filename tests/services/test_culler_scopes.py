"""The culler's hub scopes come from the culler (``hubkit.services.culler.scopes``), and only from there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hubkit.services.culler import CullerSettings
from hubkit.services.culler.scopes import BASE_SCOPES, culler_scopes

REPO = Path(__file__).resolve().parents[2]
CHART_CONFIG = REPO / "helm" / "hubkit" / "files" / "jupyterhub_config.d" / "30-hubkit-services.py"


@pytest.mark.parametrize(
    ("settings", "extra"),
    [
        ({}, []),
        ({"idle_rules": [{"name": "gpu", "profiles": ["gpu"], "timeout_seconds": 60}]}, []),
        (
            {"idle_rules": [{"name": "staff", "groups": ["staff"], "timeout_seconds": 60}]},
            ["read:users:groups"],
        ),
        ({"calendar": {"url": "https://example.edu/sessions.ics"}}, ["read:users:groups"]),
        ({"users": {"inactive_days": 30}}, ["admin:users"]),
        ({"users": {"include_admins": True}}, []),
    ],
)
def test_scopes_follow_the_settings_the_culler_accepts(settings: dict[str, Any], extra: list[str]) -> None:
    CullerSettings.model_validate(settings)  # the keys the scopes are decided on are real settings
    assert culler_scopes(settings) == [*BASE_SCOPES, *extra]


def test_the_scopes_module_loads_nothing_heavy() -> None:
    """The hub imports it while reading its configuration: no HTTP client, metrics, calendar or pydantic."""
    code = (
        "import json, sys; import hubkit.services.culler.scopes; "
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    loaded = set(
        json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    )
    heavy = {
        "httpx",
        "prometheus_client",
        "pydantic",
        "icalendar",
        "recurring_ical_events",
        "tornado",
        "yaml",
    }
    assert not loaded & heavy, loaded & heavy
    assert "kubernetes_asyncio" not in loaded


def test_the_chart_keeps_no_copy_of_the_scopes() -> None:
    text = CHART_CONFIG.read_text()
    assert "from hubkit.services.culler.scopes import culler_scopes" in text
    assert not [s for s in (*BASE_SCOPES, "read:users:groups", "admin:users") if f'"{s}"' in text]
