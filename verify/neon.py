"""Neon checks through the application's DSN: extensions, RAG tables, schema version, and the
latency of a vector and a trigram query against the plan's 10 ms (P95)."""

from __future__ import annotations

import random

import psycopg
from psycopg import sql

from migration.postgres.catalog import RAG_TABLES
from migration.schema import VERSIONS, schema_files
from verify.report import Check, p95_ms

EXTENSIONS = ("vector", "pg_trgm", "uuid-ossp")
REQUIRED = ("vector", "pg_trgm")
DIMENSIONS = 1024


def check_neon(database_url: str, p95_limit_ms: float = 10.0, runs: int = 20) -> list[Check]:
    """Every Neon check; a connection failure is the one check it reports."""
    try:
        conn = psycopg.connect(database_url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as err:
        return [Check("neon.connect", False, " ".join(str(err).split()))]
    with conn:
        checks = [Check("neon.connect", True, "connected")]
        installed = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
        # uuid-ossp is wanted where the server ships it (Neon's computes do), as the schema does.
        missing = [
            name for name in EXTENSIONS if name not in installed and (name in available or name in REQUIRED)
        ]
        checks.append(
            Check(
                "neon.extensions",
                not missing,
                f"missing {', '.join(missing)}" if missing else ", ".join(EXTENSIONS),
            )
        )
        absent = [t for t in RAG_TABLES if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]
        checks.append(
            Check("neon.tables", not absent, f"missing {', '.join(absent)}" if absent else "all present")
        )
        checks.append(_schema_version(conn))
        if "vector" in installed and not absent:
            vector = "[" + ",".join(f"{random.random():.4f}" for _ in range(DIMENSIONS)) + "]"  # noqa: S311
            checks.append(
                _latency(
                    "neon.vector-query-p95",
                    lambda: conn.execute(
                        "SELECT id FROM rag.chunks ORDER BY embedding <=> %s::vector LIMIT 10", (vector,)
                    ).fetchall(),
                    p95_limit_ms,
                    runs,
                )
            )
        if "pg_trgm" in installed and not absent:
            checks.append(
                _latency(
                    "neon.trigram-query-p95",
                    lambda: conn.execute(
                        "SELECT id FROM rag.chunks WHERE content %% %s LIMIT 10", ("retrieval augmented",)
                    ).fetchall(),
                    p95_limit_ms,
                    runs,
                )
            )
    return checks


def _schema_version(conn: psycopg.Connection) -> Check:
    wanted = {f.version: f.checksum for f in schema_files()}
    if conn.execute("SELECT to_regclass('rag_meta.schema_versions')").fetchone()[0] is None:
        return Check(
            "neon.schema-version", False, "rag_meta.schema_versions is missing: the schema was never applied"
        )
    found = dict(conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(VERSIONS)).fetchall())
    missing = sorted(set(wanted) - set(found))
    changed = sorted(v for v in wanted if v in found and found[v] != wanted[v])
    if missing or changed:
        return Check(
            "neon.schema-version", False, f"not applied: {missing or '-'}; different: {changed or '-'}"
        )
    return Check("neon.schema-version", True, f"{len(wanted)} files applied, latest {max(wanted)}")


def _latency(name: str, call, limit_ms: float, runs: int) -> Check:
    measured = p95_ms(call, runs)
    return Check(
        name, measured <= limit_ms, f"p95 {measured:.2f} ms over {runs} runs (limit {limit_ms:g} ms)"
    )
