"""Waiting for something a real server or process does, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def poll_until(predicate: Callable[[], object], timeout: float = 60.0, every: float = 0.2) -> bool:
    """Ask `predicate` every `every` seconds until it is true (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 60.0,
    message: str | Callable[[], str] = "timed out",
    every: float = 0.2,
) -> None:
    """As poll_until, but a timeout fails the test with `message` (called then, if callable:
    say what was awaited and what was seen at the end)."""
    if not poll_until(predicate, timeout, every):
        text = message() if callable(message) else message
        raise AssertionError(f"after {timeout:g} s: {text}")
