from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._chart import chart_without_dependencies
from ._stand_ins import StandIns


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HubKit's chart with the zero-to-jupyterhub dependency left out (no download possible here)."""
    return chart_without_dependencies(tmp_path_factory.mktemp("chart"))


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    endpoints = StandIns()
    try:
        yield endpoints
    finally:
        endpoints.stop()
