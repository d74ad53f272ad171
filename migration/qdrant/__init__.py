"""Single-node Qdrant -> cluster migration: `python -m migration.qdrant --help`."""

from migration.qdrant.engine import QdrantMigrationError, QdrantMigrationReport, migrate_collection

__all__ = ["QdrantMigrationError", "QdrantMigrationReport", "migrate_collection"]
