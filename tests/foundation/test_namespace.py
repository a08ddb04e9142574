"""``hubkit`` stays an implicit namespace package shared by the three distributions (docs/upgrading.md)."""

from __future__ import annotations

import tomllib

import pytest

from hubkit_testing.tools import REPO_ROOT

DISTRIBUTIONS = ("spawner", "auth", "services")


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_no_distribution_ships_hubkit_init(name: str) -> None:
    package = REPO_ROOT / "packages" / name
    wheel = tomllib.loads((package / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"][
        "wheel"
    ]
    assert wheel["packages"] == ["src/hubkit"]
    assert not (package / "src" / "hubkit" / "__init__.py").exists(), (
        "hubkit/__init__.py would make hubkit a regular package and break the shared hubkit.* namespace"
    )
    assert (package / "src" / "hubkit" / name / "__init__.py").is_file()


def test_the_installed_hubkit_is_a_namespace_spanning_all_three() -> None:
    import hubkit

    assert getattr(hubkit, "__file__", None) is None, (
        f"a regular hubkit package is installed: {hubkit.__file__}"
    )
    roots = {str(path) for path in hubkit.__path__}
    assert {str(REPO_ROOT / "packages" / name / "src" / "hubkit") for name in DISTRIBUTIONS} <= roots
