"""What the engine needs to know about a table, read from the catalogs of either side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

# pgvector's types: their text form is slow to produce (float formatting); their binary send
# form is the same bytes on every server, so checksums hash that instead.
BINARY_HASHED_TYPES = {"vector": "vector_send", "halfvec": "halfvec_send", "sparsevec": "sparsevec_send"}
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")

# The RAG schema's tables; `migration.postgres.tables` / --tables add more.
RAG_TABLES = ("rag.collections", "rag.documents", "rag.chunks", "rag.query_log")


class MigrationError(RuntimeError):
    """A one-line reason the migration cannot go on; it names the side and the table."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(): includes the typmod, e.g. vector(1024)
    base_type: str  # pg_type.typname, e.g. vector
    not_null: bool


@dataclass(frozen=True)
class Table:
    """One table as seen on one side."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def time_column(self) -> str | None:
        """For a table without a key: the first NOT NULL time column, to batch on time ranges."""
        return next((c.name for c in self.columns if c.not_null and c.type in TIME_TYPES), None)


def split_name(qualified: str) -> tuple[str, str]:
    schema, _, name = qualified.partition(".")
    if not name:
        return "public", schema
    return schema, name


def read_table(conn: psycopg.Connection, qualified: str, side: str) -> Table:
    schema, name = split_name(qualified)
    found = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
        (schema, name),
    ).fetchone()
    if found is None:
        raise MigrationError(f"{side}: table {qualified} does not exist")
    oid = found[0]
    columns = tuple(
        Column(*row)
        for row in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.attnotnull "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' "
            "ORDER BY a.attnum",
            (oid,),
        )
    )
    primary_key = tuple(
        row[0]
        for row in conn.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.ord",
            (oid,),
        )
    )
    return Table(schema, name, columns, primary_key)


def foreign_key_levels(conn: psycopg.Connection, tables: Sequence[str]) -> list[list[str]]:
    """Tables grouped so that each group only references tables of earlier groups.

    Tables in one group are independent of each other and can be copied concurrently.
    """
    edges = conn.execute(
        "SELECT DISTINCT cn.nspname || '.' || c.relname, fn.nspname || '.' || f.relname "
        "FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace "
        "JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace "
        "WHERE k.contype = 'f'"
    ).fetchall()
    wanted = set(tables)
    needs = {
        t: {parent for child, parent in edges if child == t and parent in wanted and parent != t}
        for t in tables
    }
    levels: list[list[str]] = []
    placed: set[str] = set()
    while len(placed) < len(tables):
        ready = [t for t in tables if t not in placed and needs[t] <= placed]
        if not ready:
            cycle = sorted(set(tables) - placed)
            raise MigrationError(f"foreign keys form a cycle between {', '.join(cycle)}")
        levels.append(ready)
        placed.update(ready)
    return levels


def materialized_views(conn: psycopg.Connection, schemas: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "SELECT schemaname || '.' || matviewname FROM pg_matviews WHERE schemaname = ANY(%s) ORDER BY 1",
        (list(schemas),),
    )
    return [row[0] for row in rows]
