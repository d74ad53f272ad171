"""The dynamic-provider behaviour both migrations share.

Create runs the migration; diff re-runs it only when one of `inputs` changes; update re-runs it
(a no-op that verifies again once everything is copied) and returns full outputs; delete leaves
every row and point where it is: rolling back is `pulumi destroy` of the new stack, and the
source was never written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


def throttled_progress(
    prefix: str, unit: str, every_s: float = 5.0
) -> Callable[[str, int, int, float], None]:
    """A progress callback that logs to `pulumi up` at most every few seconds per item, and always
    the last line."""
    import pulumi

    last: dict[str, float] = {}

    def progress(item: str, copied: int, total: int, rate: float) -> None:
        now = time.monotonic()
        if copied < total and now - last.get(item, 0.0) < every_s:
            return
        last[item] = now
        percent = 100.0 * copied / total if total else 100.0
        pulumi.log.info(f"{prefix} {item}: {copied}/{total} {unit} ({percent:.1f}%), {rate:,.0f} {unit}/s")

    return progress


def log_status(prefix: str) -> Callable[[str], None]:
    """A status callback (index builds, verification) that logs to `pulumi up`."""
    import pulumi

    return lambda message: pulumi.log.info(f"{prefix} {message}")


class MigrationProvider(ResourceProvider):
    """Subclasses name their `inputs` and implement `run(props) -> outputs`."""

    inputs: ClassVar[tuple[str, ...]] = ()

    def run(self, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def resource_id(self, props: dict[str, Any]) -> str:
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=self.resource_id(props), outs=self.run(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in self.inputs if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self.run(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        return None
