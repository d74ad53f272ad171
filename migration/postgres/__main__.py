"""python -m migration.postgres --source DSN --target DSN [--apply-schema] [--tables t1,t2]
[--batch-rows N] [--workers N] [--json]

Copies the RAG tables from the old TimescaleDB into Neon, resumably, and verifies them.
Exit 0 when every table verifies; otherwise 1 with a one-line reason on stderr; 130 when
stopped with Ctrl-C (what is copied stays, the same command resumes).
"""

from __future__ import annotations

import argparse
import json
import sys

from migration.cli import stop_on_ctrl_c
from migration.postgres.catalog import MigrationError
from migration.postgres.engine import MigrationInterruptedError, migrate


def _print_progress(table: str, copied: int, total: int, rate: float) -> None:
    percent = 100.0 * copied / total if total else 100.0
    print(f"{table}: {copied}/{total} rows ({percent:.1f}%), {rate:,.0f} rows/s", file=sys.stderr, flush=True)


def _print_status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m migration.postgres", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--source", required=True, help="DSN of the old database (only read)")
    parser.add_argument("--target", required=True, help="DSN of the Neon database")
    parser.add_argument("--apply-schema", action="store_true", help="apply schema/*.sql to the target first")
    parser.add_argument("--tables", default="", help="extra schema.table names, comma-separated")
    parser.add_argument("--batch-rows", type=int, default=5000, help="rows per batch and checkpoint (5000)")
    parser.add_argument("--workers", type=int, default=2, help="tables copied at once (2)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args(argv)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    try:
        report = migrate(
            args.source,
            args.target,
            tables=tables,
            batch_rows=args.batch_rows,
            apply_schema=args.apply_schema,
            workers=args.workers,
            progress=_print_progress,
            status=_print_status,
            stop=stop_on_ctrl_c("migration.postgres", "the running batches"),
        )
    except MigrationInterruptedError as err:
        print(f"migration.postgres: {err}", file=sys.stderr)
        return 130
    except MigrationError as err:
        print(f"migration.postgres: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "migration.postgres: stopped at once; the running batch was rolled back with its checkpoint: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for table in report.tables:
            state = "ok" if table.checksum_match and table.source_rows == table.target_rows else "MISMATCH"
            print(
                f"{table.table}: source {table.source_rows}, target {table.target_rows}, "
                f"checksum {'match' if table.checksum_match else 'differs'} [{state}]",
                file=sys.stderr,
            )
    if not report.ok:
        bad = [
            f"{t.table} (rows: source {t.source_rows}, target {t.target_rows})"
            if t.source_rows != t.target_rows
            else f"{t.table} (content checksum differs)"
            for t in report.tables
            if not (t.checksum_match and t.source_rows == t.target_rows)
        ]
        print(f"migration.postgres: verification failed for {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
