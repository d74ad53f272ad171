"""The Kong tier: the gateway in front of the RAG services (JWT, rate limiting, CORS)."""
