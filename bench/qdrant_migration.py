"""Qdrant single node -> cluster migration against qdrant-client's `QdrantClient.migrate()`.

    venv/bin/python -m bench.qdrant_migration [--points 20000]

Same local-mode source (--points points x 1024 dimensions with payloads) into two fresh
local-mode targets. Ours also verifies (exact counts, a 100-point sample, recall@10) and keeps
a resume checkpoint. Prints both times and the ratio. Target: at least as fast (ratio >= 1.0).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from qdrant_client import QdrantClient

from migration.qdrant.engine import migrate_collection
from tests.support.qdrant_data import make_store

COLLECTION = "docs_index_mxbai"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    work = Path(tempfile.mkdtemp(prefix="qdrant-bench-"))
    started = time.monotonic()
    make_store(work / "source", points=args.points, batch=1000)
    print(
        f"source: {args.points} points x 1024 dims in local mode, built in {time.monotonic() - started:.1f}s"
    )

    started = time.monotonic()
    source, target = QdrantClient(path=str(work / "source")), QdrantClient(path=str(work / "baseline"))
    source.migrate(target, collection_names=[COLLECTION])
    source.close()
    target.close()
    baseline_s = time.monotonic() - started

    started = time.monotonic()
    report = migrate_collection(str(work / "source"), str(work / "ours"), COLLECTION)
    ours_s = time.monotonic() - started
    if not report.ok:
        raise SystemExit(f"our migration did not verify: {report.as_dict()}")
    print(f"QdrantClient.migrate() (baseline, count check only): {baseline_s:.1f}s")
    print(f"rag-infra migration (resumable, verified, recall@10 {report.recall_at_10}): {ours_s:.1f}s")
    print(f"ratio: {baseline_s / ours_s:.2f}x (target >= 1.0x)")


if __name__ == "__main__":
    main()
