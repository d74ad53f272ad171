"""PostgresMigration: the TimescaleDB -> Neon copy as a Pulumi dynamic resource.

Create migrates; diff re-runs only when an input changes; update re-runs (a no-op that
verifies again when everything is copied) and returns full outputs; delete leaves all data:
rolling back is `pulumi destroy` of the new stack, and the source was never written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

INPUTS = ("source_dsn", "target_dsn", "tables", "batch_rows")


def _run(props: dict[str, Any]) -> dict[str, Any]:
    from migration.postgres.engine import migrate

    last_logged: dict[str, float] = {}

    def progress(table: str, copied: int, total: int, rate: float) -> None:
        now = time.monotonic()
        if copied < total and now - last_logged.get(table, 0.0) < 5.0:
            return  # one line per table every few seconds is plenty in `pulumi up`
        last_logged[table] = now
        percent = 100.0 * copied / total if total else 100.0
        pulumi.log.info(
            f"postgres migration {table}: {copied}/{total} rows ({percent:.1f}%), {rate:,.0f} rows/s"
        )

    report = migrate(
        props["source_dsn"],
        props["target_dsn"],
        tables=list(props.get("tables") or []),
        batch_rows=int(props["batch_rows"]),
        progress=progress,
    )
    summary = report.as_dict()
    if not report.ok:
        bad = [name for name, t in summary["tables"].items() if not t["checksum_match"]]
        raise RuntimeError(f"postgres migration did not verify for {', '.join(bad)}: {summary['tables']}")
    return {**props, "report": summary}


class PostgresMigrationProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="postgres-migration", outs=_run(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in INPUTS if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_run(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # Leave every row where it is: the target goes with the stack, the source is untouched.
        return None


@dataclass(frozen=True)
class PostgresMigrationArgs:
    """Inputs of the migration; both DSNs are secret."""

    source_dsn: pulumi.Input[str]
    target_dsn: pulumi.Input[str]
    tables: list[str]
    batch_rows: int


class PostgresMigration(pulumi.dynamic.Resource, module="migration", name="Postgres"):
    """Every RAG table copied from TimescaleDB into Neon and verified by count and checksum."""

    report: pulumi.Output[dict]

    def __init__(
        self, name: str, args: PostgresMigrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            PostgresMigrationProvider(),
            name,
            {
                "source_dsn": pulumi.Output.secret(args.source_dsn),
                "target_dsn": pulumi.Output.secret(args.target_dsn),
                "tables": args.tables,
                "batch_rows": args.batch_rows,
                "report": None,
            },
            opts,
        )
