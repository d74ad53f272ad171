"""TimescaleDB -> Neon migration: `python -m migration.postgres --help`."""

from migration.postgres.catalog import RAG_TABLES, MigrationError
from migration.postgres.engine import MigrationReport, TableReport, migrate

__all__ = ["RAG_TABLES", "MigrationError", "MigrationReport", "TableReport", "migrate"]
