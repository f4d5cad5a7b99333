"""Helpers for the read-replica tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
DEADLINE_S = 15.0


def wait_for(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = DEADLINE_S
) -> T:
    """Poll ``probe`` until ``done`` holds for its value; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout:g}s; last seen: {value!r}")
        time.sleep(0.02)
