"""Waiting for a member to come back: the poll loop of the rollout gates (dynamic providers)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    check: Callable[[], tuple[bool, str]],
    what: str,
    timeout: float,
    interval: float,
    error: type[Exception],
) -> str:
    """Call `check` (ready, what was seen) every `interval` seconds until it is ready; returns
    what it saw then, or raises `error` naming `what` and the last sighting after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        ready, seen = check()
        if ready:
            return seen
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:.0f}s waiting for {what}: {seen}")
        time.sleep(interval)
