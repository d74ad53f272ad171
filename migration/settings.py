"""Settings of the data migrations (`rag-infra:migration`): TimescaleDB -> Neon, Qdrant -> cluster."""

from typing import Self
from urllib.parse import urlsplit

from pydantic import model_validator

from components.platform.settings import FLAG, ConfigModel, fail, items, optional, text, whole


def _check_source(location: str) -> None:
    """A URL the migration can open, or an absolute local-mode path (the CLI refuses the rest too)."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https", "grpc", "grpcs") and parts.hostname:
        return
    if location.startswith("/") and "://" not in location:
        return
    fail(
        "must be an http(s):// or grpc(s):// URL with a host, or an absolute local-mode path, "
        f"got {location!r}"
    )


class PostgresMigrationSettings(ConfigModel):
    """TimescaleDB -> Neon copy."""

    enabled: FLAG = False
    tables: items(text(r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*", "schema.table")) = ()
    """Tables beyond the RAG schema's own, as schema.table."""
    batch_rows: whole(1) = 5000


class QdrantMigrationSettings(ConfigModel):
    """Single-node Qdrant -> cluster copy."""

    enabled: FLAG = False
    source_url: optional(text(check=_check_source)) = None
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
