"""Which tests start a real JupyterHub: those run again on a second Python set (z2jh's hub set).

The choice is mechanical. A test is a hub test when its own code, or the code of any fixture it uses,
reaches the ``Hub`` class: by naming it, or by calling a module-level function or fixture that does
(followed through their globals, nested functions included). Such tests get the ``hub`` marker;
``pytest --hub-tests-only`` deselects every other test. A test that starts a hub some other way can
say so with ``@pytest.mark.hub``.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .hub import Hub
from .tools import REPO_ROOT

MARKER = "hub"
OPTION = "--hub-tests-only"


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and the code of every function, lambda and comprehension nested in it."""
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


class HubReachability:
    """Answers "does this function reach ``Hub``?", remembering each function's answer."""

    def __init__(self) -> None:
        self._seen: dict[types.CodeType, bool] = {}

    def reaches_hub(self, func: Any) -> bool:
        func = getattr(func, "__wrapped__", func)
        code = getattr(func, "__code__", None)
        if code is None:
            return False
        if code in self._seen:
            return self._seen[code]
        self._seen[code] = False  # a cycle (recursion) adds nothing
        namespace: dict[str, Any] = getattr(func, "__globals__", {})
        found = any(self._name_reaches_hub(namespace.get(name)) for c in _codes(code) for name in c.co_names)
        self._seen[code] = found
        return found

    def _name_reaches_hub(self, value: Any) -> bool:
        if isinstance(value, type):
            return issubclass(value, Hub)
        # Only plain functions of this project are followed: library code starts no hub.
        if isinstance(value, types.FunctionType) and _is_ours(value):
            return self.reaches_hub(value)
        return False


def _is_ours(func: types.FunctionType) -> bool:
    """Defined in this repository's tests or test platform (not in an installed library)."""
    path = Path(func.__code__.co_filename)
    return path.is_relative_to(REPO_ROOT / "tests")


def is_hub_test(item: pytest.Item, reach: HubReachability) -> bool:
    if item.get_closest_marker(MARKER) is not None:
        return True
    if isinstance(item, pytest.Function) and reach.reaches_hub(item.function):
        return True
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    if fixtureinfo is None:
        return False
    return any(
        reach.reaches_hub(definition.func)
        for definitions in fixtureinfo.name2fixturedefs.values()
        for definition in definitions
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        action="store_true",
        help="run only the tests that start a real JupyterHub (marked 'hub' at collection)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: starts a real JupyterHub (set at collection, hub_tests.py)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reach = HubReachability()
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        if is_hub_test(item, reach):
            item.add_marker(MARKER)
            selected.append(item)
        else:
            deselected.append(item)
    if config.getoption(OPTION):
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = selected
