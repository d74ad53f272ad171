-- The RAG tables, column-compatible with the legacy TimescaleDB schema (same names, types,
-- defaults and constraints), so rows copy across unchanged.
CREATE SCHEMA IF NOT EXISTS rag;

CREATE TABLE rag.collections (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL UNIQUE,
    embedding_model text NOT NULL,
    embedding_dim   integer NOT NULL CHECK (embedding_dim > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rag.documents (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    collection_id uuid NOT NULL REFERENCES rag.collections(id),
    source_path   text NOT NULL,
    title         text,
    content_hash  text NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (collection_id, source_path)
);

CREATE TABLE rag.chunks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id uuid NOT NULL REFERENCES rag.documents(id) ON DELETE CASCADE,
    chunk_index integer NOT NULL,
    content     text NOT NULL,
    token_count integer,
    embedding   vector(1024),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (document_id, chunk_index)
);

-- Time series of queries; no primary key, as on the old hypertable (duplicates are kept).
CREATE TABLE rag.query_log (
    ts            timestamptz NOT NULL,
    collection_id uuid REFERENCES rag.collections(id),
    query         text NOT NULL,
    top_k         integer NOT NULL DEFAULT 5,
    latency_ms    double precision NOT NULL,
    result_count  integer NOT NULL
);
CREATE INDEX query_log_ts_idx ON rag.query_log (ts DESC);
