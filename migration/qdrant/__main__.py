"""python -m migration.qdrant --source URL_OR_PATH --target URL_OR_PATH --collection NAME
[--target-collection NAME] [--batch-size N] [--shard-number N] [--replication-factor N]
[--write-consistency-factor N] [--json]

Copies one collection from the old single-node Qdrant into the cluster, resumably, and
verifies it. A path is a qdrant-client local-mode store; a URL on port 6334 (or grpc://) is
gRPC. API keys come from QDRANT_SOURCE_API_KEY and QDRANT_TARGET_API_KEY (kept off the
command line). Exit 0 when the collection verifies; otherwise 1 with a one-line reason; 130
when stopped with Ctrl-C (the same command resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from migration.cli import stop_on_ctrl_c
from migration.qdrant.engine import QdrantMigrationError, QdrantMigrationInterruptedError, migrate_collection


def _print_progress(collection: str, copied: int, total: int, rate: float) -> None:
    percent = 100.0 * copied / total if total else 100.0
    print(
        f"{collection}: {copied}/{total} points ({percent:.1f}%), {rate:,.0f} points/s",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migration.qdrant", description=__doc__.split("\n\n")[1])
    parser.add_argument("--source", required=True, help="old Qdrant: URL or local-mode path (only read)")
    parser.add_argument("--target", required=True, help="the cluster (its LB URL) or a local-mode path")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--target-collection", help="name on the target (default: the same)")
    parser.add_argument("--batch-size", type=int, default=512, help="points per scroll page and upsert (512)")
    parser.add_argument("--shard-number", type=int, help="HA parameter when the target must be created")
    parser.add_argument("--replication-factor", type=int)
    parser.add_argument("--write-consistency-factor", type=int)
    parser.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    args = parser.parse_args(argv)
    # qdrant-client's local-mode advice comes as multi-line warnings: one-line output only.
    warnings.filterwarnings("ignore", category=UserWarning, module=r"qdrant_client(\..*)?$")
    try:
        report = migrate_collection(
            args.source,
            args.target,
            args.collection,
            target_collection=args.target_collection,
            batch_size=args.batch_size,
            shard_number=args.shard_number,
            replication_factor=args.replication_factor,
            write_consistency_factor=args.write_consistency_factor,
            source_api_key=os.environ.get("QDRANT_SOURCE_API_KEY") or None,
            target_api_key=os.environ.get("QDRANT_TARGET_API_KEY") or None,
            progress=_print_progress,
            stop=stop_on_ctrl_c("migration.qdrant", "the running batch"),
        )
    except QdrantMigrationInterruptedError as err:
        print(f"migration.qdrant: {err}", file=sys.stderr)
        return 130
    except QdrantMigrationError as err:
        print(f"migration.qdrant: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("migration.qdrant: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    print(
        f"{report.collection} -> {report.target_collection}: source {report.source_points}, "
        f"target {report.target_points}, "
        f"sample mismatches {report.sample_mismatches}/{report.sample_checked}, "
        f"recall@10 {report.recall_at_10}",
        file=sys.stderr,
    )
    if not report.ok:
        found = "; ".join(report.differences[:3])
        print(f"migration.qdrant: verification failed for {report.collection}: {found}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
