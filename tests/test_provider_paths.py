"""Dynamic providers are pickled into the state by module path: moving one breaks the `refresh`
and `destroy` of every stack deployed before the move. These paths are a contract."""

from __future__ import annotations

import base64
import importlib
import inspect
import pkgutil

from pulumi.dynamic import ResourceProvider

import components
import migration

PINNED = {
    ("components.neon.rag_schema", "RagSchemaProvider"),
    ("components.neon.tenant", "NeonTenantProvider"),
    ("components.neon.timeline", "NeonTimelineProvider"),
    ("components.qdrant.collection", "QdrantCollectionProvider"),
    ("components.neon.safekeeper_gate", "SafekeeperReadyProvider"),
    ("components.neon.minio_gate", "MinioReadyProvider"),
    ("components.neon.store_layout", "ObjectStorageLayoutProvider"),
    ("components.qdrant.member_gate", "QdrantMemberReadyProvider"),
    ("migration.postgres.resource", "PostgresMigrationProvider"),
    ("migration.qdrant.resource", "QdrantMigrationProvider"),
}

# The migrations' shared base class: unpickling a migration provider imports it too.
MIGRATION_BASE = ("migration.provider", "MigrationProvider")


def _providers_in(package) -> set[tuple[str, str]]:
    found = set()
    for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        if module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, ResourceProvider) and value.__module__ == module.__name__:
                found.add((module.__name__, name))
    return found


def test_every_dynamic_provider_stays_at_its_pinned_module_path():
    found = _providers_in(components) | _providers_in(migration)
    assert found == PINNED | {MIGRATION_BASE}


def test_the_state_records_the_pinned_module_paths(program):
    run = program(
        "prod",
        overrides={
            "migration": {
                "postgres": {"enabled": True},
                "qdrant": {
                    "enabled": True,
                    "sourceUrl": "http://old:6333",
                    "collections": ["docs_index_mxbai"],
                },
            }
        },
        secret_overrides={"timescaleUrl": "postgresql://old/db"},
    )
    pickled = {
        base64.b64decode(r.plain("__provider"))
        for r in run.resources
        if r.typ.startswith("pulumi-python:dynamic")
    }
    modules = {module.encode() for module, _ in PINNED}
    assert len(pickled) == len(PINNED)
    for blob in pickled:
        assert any(module in blob for module in modules), blob[:120]
