"""Settings of the data migrations (`rag-infra:migration`): TimescaleDB -> Neon, Qdrant -> cluster."""

from typing import Self

from pydantic import model_validator

from components.platform.settings import FLAG, ConfigModel, fail, items, optional, text, whole


class PostgresMigrationSettings(ConfigModel):
    """TimescaleDB -> Neon copy."""

    enabled: FLAG = False
    tables: items(text(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*", "schema.table")) = ()
    """Tables beyond the RAG schema's own, as schema.table."""
    batch_rows: whole(1) = 5000


class QdrantMigrationSettings(ConfigModel):
    """Single-node Qdrant -> cluster copy."""

    enabled: FLAG = False
    source_url: optional(text()) = None
    """URL of the old node, or the path of a qdrant-client local-mode store."""
    collections: items() = ()
    batch_size: whole(1) = 512

    @model_validator(mode="after")
    def _something_to_copy(self) -> Self:
        if self.enabled and not self.source_url:
            fail("is required when migration.qdrant.enabled is true", "sourceUrl")
        if self.enabled and not self.collections:
            fail("must list at least one collection to migrate", "collections")
        return self


class MigrationSettings(ConfigModel):
    """Both data migrations."""

    postgres: PostgresMigrationSettings = {}
    qdrant: QdrantMigrationSettings = {}
