"""Apply the project's RAG schema (schema/NNN_*.sql) to a database, each file exactly once.

Applied files are recorded in `rag_meta.schema_versions` with their checksum, in the same
transaction as the file itself, so a run killed half-way leaves either the whole file or
nothing. A file that changed after it was applied is an error: add a new file instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
META_SCHEMA = "rag_meta"
VERSIONS = sql.Identifier(META_SCHEMA, "schema_versions")
# Any constant shared by every applier: concurrent runs against one database take turns.
LOCK_KEY = 0x52414753  # "RAGS"


class SchemaError(RuntimeError):
    """The target's recorded schema disagrees with the project's files."""


@dataclass(frozen=True)
class SchemaFile:
    version: str
    path: Path
    checksum: str

    @property
    def sql(self) -> str:
        return self.path.read_text()


def schema_files(directory: Path = SCHEMA_DIR) -> list[SchemaFile]:
    """The schema files in version order (their file names)."""
    files = []
    for path in sorted(directory.glob("[0-9][0-9][0-9]_*.sql")):
        files.append(SchemaFile(path.stem, path, hashlib.sha256(path.read_bytes()).hexdigest()))
    if not files:
        raise SchemaError(f"no schema files in {directory}")
    return files


def apply_schema(dsn: str, directory: Path = SCHEMA_DIR, connect_timeout: int = 10) -> list[str]:
    """Apply every file not yet recorded; return the versions applied by this call."""
    files = schema_files(directory)
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(META_SCHEMA)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (version text PRIMARY KEY, checksum text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(VERSIONS)
            )
            recorded = dict(
                conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(VERSIONS)).fetchall()
            )
            for schema_file in files:
                if schema_file.version in recorded:
                    if recorded[schema_file.version] != schema_file.checksum:
                        raise SchemaError(
                            f"schema file {schema_file.path.name} changed after it was applied; "
                            "add a new numbered file instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(schema_file.sql)
                    conn.execute(
                        sql.SQL("INSERT INTO {} (version, checksum) VALUES (%s, %s)").format(VERSIONS),
                        (schema_file.version, schema_file.checksum),
                    )
                applied_now.append(schema_file.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied_now


def schema_fingerprint(directory: Path = SCHEMA_DIR) -> list[str]:
    """`version:checksum` of every file: a change here is what re-runs the schema resource."""
    return [f"{f.version}:{f.checksum[:16]}" for f in schema_files(directory)]
