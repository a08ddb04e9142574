"""Polling until a condition holds, for tests: one sync and one async form with the same contract."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Call ``check`` every 0.2 s until it returns something truthy (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout:.0f} s; last: {last!r}")


async def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """``wait_for`` without blocking the event loop (the hub under test may share it)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout:.0f} s; last: {last!r}")
