-- What Neon adds over the old database: approximate nearest-neighbour search on the embeddings
-- (HNSW, cosine, as the Qdrant collection) and fuzzy text search on chunk content.
CREATE INDEX chunks_embedding_hnsw_idx ON rag.chunks USING hnsw (embedding vector_cosine_ops);
CREATE INDEX chunks_content_trgm_idx ON rag.chunks USING gin (content gin_trgm_ops);
CREATE INDEX documents_collection_idx ON rag.documents (collection_id);
