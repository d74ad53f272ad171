"""PostgresMigration: the TimescaleDB -> Neon copy as a Pulumi dynamic resource.

Create migrates; diff re-runs only when an input changes; update re-runs (a no-op that
verifies again when everything is copied) and returns full outputs; delete leaves all data:
rolling back is `pulumi destroy` of the new stack, and the source was never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from migration.provider import MigrationProvider, log_status, throttled_progress


class PostgresMigrationProvider(MigrationProvider):
    """Every RAG table copied and verified; see migration.provider for the lifecycle."""

    inputs = ("source_dsn", "target_dsn", "tables", "batch_rows")

    def resource_id(self, props: dict[str, Any]) -> str:
        return "postgres-migration"

    def run(self, props: dict[str, Any]) -> dict[str, Any]:
        from migration.postgres.engine import migrate

        report = migrate(
            props["source_dsn"],
            props["target_dsn"],
            tables=list(props.get("tables") or []),
            batch_rows=int(props["batch_rows"]),
            progress=throttled_progress("postgres migration", "rows"),
            status=log_status("postgres migration"),
        )
        summary = report.as_dict()
        if not report.ok:
            bad = [name for name, t in summary["tables"].items() if not t["checksum_match"]]
            raise RuntimeError(f"postgres migration did not verify for {', '.join(bad)}: {summary['tables']}")
        return {**props, "report": summary}


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
