"""A legacy RAG database with the plan's shape: 3 collections, 220 documents, 3,087 chunks with
1024-dimension vectors, and a query_log with exact duplicate rows."""

from __future__ import annotations

import psycopg

from tests.harness import ROOT

LEGACY_SCHEMA = ROOT / "tests" / "fixtures" / "legacy-timescaledb-schema.sql"


def load_legacy(dsn: str, chunks: int = 3087, documents: int = 220, query_rows: int = 500) -> None:
    """Create the legacy schema and fill it server-side (fast, deterministic with setseed)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(LEGACY_SCHEMA.read_text())
        conn.execute("SELECT setseed(0.42)")
        conn.execute(
            "INSERT INTO rag.collections (name, embedding_model, embedding_dim) VALUES "
            "('docs_index_mxbai', 'mxbai-embed-large', 1024), ('api_index', 'mxbai-embed-large', 1024), "
            "('runbooks', 'mxbai-embed-large', 1024)"
        )
        conn.execute(
            "INSERT INTO rag.documents (collection_id, source_path, title, content_hash, metadata) "
            "SELECT (SELECT id FROM rag.collections ORDER BY name OFFSET (d %% 3) LIMIT 1), "
            "'docs/page-' || d || '.md', 'Page ' || d, md5(d::text), jsonb_build_object('n', d, 'tags', "
            "jsonb_build_array('rag', 'doc'))"
            "FROM generate_series(1, %s) d",
            (documents,),
        )
        conn.execute(
            "WITH docs AS (SELECT id, source_path, row_number() OVER (ORDER BY source_path) - 1 AS rn "
            "              FROM rag.documents) "
            "INSERT INTO rag.chunks (document_id, chunk_index, content, token_count, embedding) "
            "SELECT d.id, c.n / %s, 'chunk ' || c.n || ' of ' || d.source_path || ' about neon qdrant kong', "
            "  (c.n %% 500) + 10, "
            # Every 97th chunk still awaits its embedding (NULL), as the legacy schema allows.
            "  CASE WHEN c.n %% 97 = 0 THEN NULL ELSE "
            "  (SELECT array_agg(random()::real)::vector(1024) FROM generate_series(1, 1024) g "
            "   WHERE c.n > -g) END "
            "FROM generate_series(0, %s - 1) c(n) JOIN docs d ON d.rn = c.n %% %s",
            (documents, chunks, documents),
        )
        conn.execute(
            "INSERT INTO rag.query_log (ts, collection_id, query, top_k, latency_ms, result_count) "
            "SELECT timestamptz '2026-11-01 00:00+00' + (q / 3) * interval '7 minutes', "
            "  (SELECT id FROM rag.collections ORDER BY name LIMIT 1), 'query ' || (q / 3), 5, 3.5, 5 "
            "FROM generate_series(1, %s) q",
            (query_rows,),
        )
