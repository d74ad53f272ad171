"""The result of a verification: named checks, each with what it saw."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """One check: its name (`tier.what`), whether it passed and what it saw."""

    name: str
    ok: bool
    saw: str

    def __str__(self) -> str:
        return f"[{'ok' if self.ok else 'FAIL'}] {self.name}: {self.saw}"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(check) for check in self.checks]}


def p95_ms(call: Callable[[], Any], runs: int) -> float:
    """The 95th percentile latency of `call` in milliseconds, over `runs` calls after one warm-up."""
    call()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(timings, n=20, method="inclusive")[18] if runs > 1 else timings[0]
