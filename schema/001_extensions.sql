-- Extensions of the RAG schema. pgvector and pg_trgm are required; uuid-ossp is created where
-- the server ships it (Neon's compute images do) for applications that call uuid_generate_v4().
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'uuid-ossp') THEN
        CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
    END IF;
END $$;
