from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ._chart import chart_with_z2jh
from ._stand_ins import StandIns


@pytest.fixture(scope="session")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HubKit's chart with the real zero-to-jupyterhub chart as its dependency (copied, not downloaded)."""
    return chart_with_z2jh(tmp_path_factory.mktemp("chart"))


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    endpoints = StandIns()
    try:
        yield endpoints
    finally:
        endpoints.stop()
