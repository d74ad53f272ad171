"""TimescaleDB (or any PostgreSQL) -> Neon copy: streamed, resumable, verified.

- The source is only read: its sessions are `default_transaction_read_only`. Hypertables are
  read with `COPY (SELECT …)` through the parent table, which returns every chunk.
- Rows stream source -> target with COPY (binary when the column types match) in batches keyed
  on the primary key, or on time ranges for key-less time series; a batch never sits in memory
  whole. Tables that do not reference each other copy concurrently.
- Each batch commits in the target together with its checkpoint in `rag_migration`
  (outside the app schema), so a run killed at any instant resumes with nothing lost or doubled.
- Secondary indexes of a table (the HNSW and trigram ones above all) are dropped before its
  load and rebuilt once after it; their definitions are kept in `rag_migration` meanwhile, so
  a killed run still rebuilds them when it is resumed.
- Verification: per table, row count and an order-independent content checksum computed by the
  same SQL on both sides.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql

from migration.postgres.catalog import (
    BINARY_HASHED_TYPES,
    RAG_TABLES,
    MigrationError,
    Table,
    foreign_key_levels,
    materialized_views,
    read_table,
)

BOOKKEEPING_SCHEMA = "rag_migration"
PROGRESS = sql.Identifier(BOOKKEEPING_SCHEMA, "table_progress")
DEFERRED = sql.Identifier(BOOKKEEPING_SCHEMA, "deferred_indexes")
# Building an HNSW index once after the load is far cheaper than maintaining it row by row.
INDEX_BUILD_MEMORY = "256MB"
# Same text forms on both sides, whatever the servers' defaults.
SESSION_SETTINGS = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1"


@dataclass
class TableReport:
    """What the migration found for one table."""

    table: str
    source_rows: int = 0
    target_rows: int = 0
    checksum_match: bool = False
    copied_rows: int = 0
    batches: int = 0
    mode: str = ""
    copy_format: str = ""
    duration_s: float = 0.0


@dataclass
class MigrationReport:
    tables: list[TableReport] = field(default_factory=list)
    refreshed_views: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.checksum_match and t.source_rows == t.target_rows for t in self.tables)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "duration_s": round(self.duration_s, 3),
            "refreshed_views": self.refreshed_views,
            "tables": {t.table: {k: v for k, v in asdict(t).items() if k != "table"} for t in self.tables},
        }


Progress = Callable[[str, int, int, float], None]
"""progress(table, rows_copied, source_rows, rows_per_second)"""
Status = Callable[[str], None]
"""status(message): the phases after the copy (index builds, verification, view refreshes)"""


class MigrationInterruptedError(MigrationError):
    """Stopped on request at a batch boundary; what is committed stays, a rerun resumes."""


def connect(dsn: str, side: str, read_only: bool = False) -> psycopg.Connection:
    """A connection with stable text forms; errors name the side, never the password."""
    options = SESSION_SETTINGS + (" -c default_transaction_read_only=on" if read_only else "")
    try:
        return psycopg.connect(dsn, options=options, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as err:
        reason = " ".join(str(err).split())
        raise MigrationError(f"{side}: cannot connect: {reason}") from None
    except psycopg.ProgrammingError as err:
        raise MigrationError(f"{side}: invalid connection string: {err}") from None


def _cols(table: Table) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


def _ident(table: Table) -> sql.Composable:
    return sql.Identifier(table.schema, table.name)


def checksum_sql(table: Table) -> sql.Composable:
    """count(*) and the sum of the rows' md5 halves: independent of row order, and duplicate
    rows count as often as they occur."""
    parts = []
    for column in table.columns:
        send = BINARY_HASHED_TYPES.get(column.base_type)
        ident = sql.Identifier(column.name)
        parts.append(sql.SQL("md5({}({}))").format(sql.SQL(send), ident) if send else ident)
    row = sql.SQL("md5(ROW({})::text)").format(sql.SQL(", ").join(parts))
    return sql.SQL(
        "SELECT count(*), "
        "coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0), "
        "coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0) "
        "FROM (SELECT {} AS h FROM {}) hashed"
    ).format(row, _ident(table))


def table_checksum(dsn: str, side: str, table: Table) -> tuple[int, str]:
    with connect(dsn, side, read_only=side == "source") as conn:
        count, high, low = conn.execute(checksum_sql(table)).fetchone()
    return count, f"{high}:{low}"


class _Copier:
    """Copies one table in batches, checkpointing each in the target."""

    def __init__(
        self, source_dsn: str, target_dsn: str, source: Table, target: Table, batch_rows: int
    ) -> None:
        self.source_dsn, self.target_dsn = source_dsn, target_dsn
        self.source, self.target = source, target
        self.batch_rows = batch_rows
        same_types = [c.type for c in source.columns] == [c.type for c in target.columns]
        self.copy_format = "binary" if same_types else "text"
        if source.primary_key:
            self.mode, self.bound_columns = "key", source.primary_key
        elif source.time_column:
            self.mode, self.bound_columns = "time", (source.time_column,)
        else:
            self.mode, self.bound_columns = "whole", ()

    def _bound_expr(self) -> sql.Composable:
        return sql.SQL("ROW({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in self.bound_columns))

    def _bound_param(self, values: list[str]) -> sql.Composable:
        casts = [
            sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(self.source.column(c).type))
            for c, v in zip(self.bound_columns, values, strict=True)
        ]
        return sql.SQL("ROW({})").format(sql.SQL(", ").join(casts))

    def next_upper(self, src: psycopg.Connection, last: list[str] | None) -> list[str] | None:
        """The bound that ends the next batch: `batch_rows` rows on (for time ranges, every row
        with the same time as the last one is taken too, so duplicates never split)."""
        bound = self._bound_expr()
        after = sql.SQL("WHERE {} > {}").format(bound, self._bound_param(last)) if last else sql.SQL("")
        text_cols = sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier(c)) for c in self.bound_columns
        )
        query = sql.SQL(
            "SELECT {text_cols} FROM (SELECT {cols} FROM {table} {after} ORDER BY {order} LIMIT {n}) batch "
            "ORDER BY {order} DESC LIMIT 1"
        ).format(
            text_cols=text_cols,
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in self.bound_columns),
            table=_ident(self.source),
            after=after,
            order=sql.SQL(", ").join(sql.Identifier(c) for c in self.bound_columns),
            n=sql.Literal(self.batch_rows),
        )
        row = src.execute(query).fetchone()
        return list(row) if row else None

    def copy_batch(
        self,
        src: psycopg.Connection,
        tgt: psycopg.Connection,
        last: list[str] | None,
        upper: list[str] | None,
    ) -> int:
        """Stream one batch and commit it with its checkpoint. Returns the rows copied."""
        where = []
        if last is not None:
            where.append(sql.SQL("{} > {}").format(self._bound_expr(), self._bound_param(last)))
        if upper is not None:
            where.append(sql.SQL("{} <= {}").format(self._bound_expr(), self._bound_param(upper)))
        condition = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
        fmt = sql.SQL("(FORMAT BINARY)" if self.copy_format == "binary" else "")
        out = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT {}").format(
            _cols(self.source), _ident(self.source), condition, fmt
        )
        into = sql.SQL("COPY {} ({}) FROM STDIN {}").format(_ident(self.target), _cols(self.source), fmt)
        with tgt.transaction(), tgt.cursor() as tcur:
            with src.transaction(), src.cursor() as scur, scur.copy(out) as reader, tcur.copy(into) as writer:
                for chunk in reader:
                    writer.write(chunk)
            copied = tcur.rowcount
            tcur.execute(
                sql.SQL(
                    "UPDATE {} SET last_bound = %s, rows_copied = rows_copied + %s, completed = %s, "
                    "updated_at = now() WHERE table_name = %s"
                ).format(PROGRESS),
                (json.dumps(upper) if upper else None, copied, upper is None, self.source.qualified),
            )
        return copied


def _prepare_bookkeeping(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(BOOKKEEPING_SCHEMA)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, mode text NOT NULL, "
            "last_bound text, rows_copied bigint NOT NULL DEFAULT 0, "
            "completed boolean NOT NULL DEFAULT false, "
            "updated_at timestamptz NOT NULL DEFAULT now())"
        ).format(PROGRESS)
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (table_name text NOT NULL, index_name text NOT NULL, "
            "definition text NOT NULL, PRIMARY KEY (table_name, index_name))"
        ).format(DEFERRED)
    )


def _defer_indexes(tgt: psycopg.Connection, table: Table) -> None:
    """Drop the table's indexes that back no constraint, remembering their definitions."""
    with tgt.transaction():
        rows = tgt.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
            (f'"{table.schema}"."{table.name}"',),
        ).fetchall()
        for name, definition in rows:
            tgt.execute(
                sql.SQL("INSERT INTO {} (table_name, index_name, definition) VALUES (%s, %s, %s)").format(
                    DEFERRED
                ),
                (table.qualified, name, definition),
            )
            tgt.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(table.schema, name)))


def _restore_indexes(tgt: psycopg.Connection, table: Table, status: Status) -> None:
    """Rebuild deferred indexes (each once, even across a resumed run)."""
    rows = tgt.execute(
        sql.SQL("SELECT index_name, definition FROM {} WHERE table_name = %s ORDER BY index_name").format(
            DEFERRED
        ),
        (table.qualified,),
    ).fetchall()
    if rows:
        tgt.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(INDEX_BUILD_MEMORY)))
    for name, definition in rows:
        status(f"{table.qualified}: building index {name}")
        with tgt.transaction():
            exists = tgt.execute("SELECT to_regclass(%s)", (f'"{table.schema}"."{name}"',)).fetchone()[0]
            if exists is None:
                tgt.execute(definition)
            tgt.execute(
                sql.SQL("DELETE FROM {} WHERE table_name = %s AND index_name = %s").format(DEFERRED),
                (table.qualified, name),
            )


def _check_columns(source: Table, target: Table) -> None:
    src_names = [c.name for c in source.columns]
    tgt_names = [c.name for c in target.columns]
    if sorted(src_names) != sorted(tgt_names):
        only_src = sorted(set(src_names) - set(tgt_names))
        only_tgt = sorted(set(tgt_names) - set(src_names))
        raise MigrationError(
            f"target table {target.qualified} has a different column set "
            f"(only in source: {', '.join(only_src) or '-'}; only in target: {', '.join(only_tgt) or '-'})"
        )
    for column in source.columns:
        found = target.column(column.name).type
        if found != column.type:
            # int -> text would copy "fine" and change every value's meaning; vector(768) vs
            # vector(1024) would fail half way.
            raise MigrationError(
                f"target table {target.qualified} column {column.name} is {found}, "
                f"the source's is {column.type}"
            )


def _identity(conn: psycopg.Connection) -> tuple[object, str]:
    """Which server and database a connection reaches (names and ports can alias)."""
    try:
        server = conn.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]
    except psycopg.errors.InsufficientPrivilege:
        server = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    return server, conn.execute("SELECT current_database()").fetchone()[0]


def _preflight(tgt: psycopg.Connection, targets: dict[str, Table]) -> None:
    """Refuse, before anything is written, a target table this migration did not fill itself."""
    progress = {}
    if tgt.execute("SELECT to_regclass('rag_migration.table_progress')").fetchone()[0]:
        progress = dict(
            tgt.execute(sql.SQL("SELECT table_name, rows_copied FROM {}").format(PROGRESS)).fetchall()
        )
    for name, table in targets.items():
        rows = tgt.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(table))).fetchone()[0]
        if name not in progress and rows:
            raise MigrationError(
                f"target table {name} already holds {rows} rows that this migration did not write; "
                "migrate into an empty table"
            )
        if name in progress and rows != progress[name]:
            raise MigrationError(
                f"target table {name} holds {rows} rows but this migration copied {progress[name]}: "
                "it was changed by something else"
            )


def _start_state(tgt: psycopg.Connection, copier: _Copier) -> tuple[list[str] | None, bool, int]:
    """(last bound, completed, rows copied so far); refuses a target it did not fill itself."""
    table = copier.target.qualified
    row = tgt.execute(
        sql.SQL("SELECT last_bound, completed, rows_copied, mode FROM {} WHERE table_name = %s").format(
            PROGRESS
        ),
        (table,),
    ).fetchone()
    target_rows = tgt.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(copier.target))).fetchone()[0]
    if row is None:
        if target_rows:
            raise MigrationError(
                f"target table {table} already holds {target_rows} rows that this migration did not write; "
                "migrate into an empty table"
            )
        tgt.execute(
            sql.SQL("INSERT INTO {} (table_name, mode) VALUES (%s, %s)").format(PROGRESS),
            (table, copier.mode),
        )
        _defer_indexes(tgt, copier.target)
        return None, False, 0
    last_bound, completed, rows_copied, mode = row
    if mode != copier.mode:
        raise MigrationError(
            f"target table {table} was started in {mode} mode; the source now needs {copier.mode}"
        )
    if target_rows != rows_copied:
        raise MigrationError(
            f"target table {table} holds {target_rows} rows but this migration copied {rows_copied}: "
            "it was changed by something else"
        )
    return (json.loads(last_bound) if last_bound else None), completed, rows_copied


def _copy_table(
    source_dsn: str,
    target_dsn: str,
    source: Table,
    target: Table,
    batch_rows: int,
    source_rows: int,
    progress: Progress,
    status: Status,
    stop: threading.Event,
) -> TableReport:
    copier = _Copier(source_dsn, target_dsn, source, target, batch_rows)
    report = TableReport(table=source.qualified, mode=copier.mode, copy_format=copier.copy_format)
    started = time.monotonic()
    with connect(source_dsn, "source", read_only=True) as src, connect(target_dsn, "target") as tgt:
        last, completed, done_rows = _start_state(tgt, copier)
        report.copied_rows = done_rows
        while not completed:
            if stop.is_set():
                # Between batches: every batch so far is committed with its checkpoint.
                raise MigrationInterruptedError(source.qualified)
            upper = copier.next_upper(src, last) if copier.mode != "whole" else None
            if copier.mode != "whole" and upper is None:
                # Nothing after the last bound: mark the table complete.
                tgt.execute(
                    sql.SQL(
                        "UPDATE {} SET completed = true, updated_at = now() WHERE table_name = %s"
                    ).format(PROGRESS),
                    (source.qualified,),
                )
                break
            copied = copier.copy_batch(src, tgt, last, upper)
            report.copied_rows += copied
            report.batches += 1
            last = upper
            completed = upper is None
            elapsed = max(time.monotonic() - started, 1e-6)
            progress(
                source.qualified, report.copied_rows, source_rows, (report.copied_rows - done_rows) / elapsed
            )
        _restore_indexes(tgt, target, status)
    report.duration_s = time.monotonic() - started
    return report


def _fix_sequences(conn: psycopg.Connection, table: Table) -> None:
    for column in table.columns:
        sequence = conn.execute(
            "SELECT pg_get_serial_sequence(%s, %s)", (f'"{table.schema}"."{table.name}"', column.name)
        ).fetchone()[0]
        if sequence:
            conn.execute(
                sql.SQL("SELECT setval(%s, greatest((SELECT max({}) FROM {}), 1))").format(
                    sql.Identifier(column.name), _ident(table)
                ),
                (sequence,),
            )


def migrate(
    source_dsn: str,
    target_dsn: str,
    tables: Sequence[str] = (),
    batch_rows: int = 5000,
    apply_schema: bool = False,
    workers: int = 2,
    progress: Progress | None = None,
    status: Status | None = None,
    stop: threading.Event | None = None,
) -> MigrationReport:
    """Copy the RAG tables (plus `tables`) from source to target, then verify them.

    Raises MigrationError with a one-line reason; a failed verification is reported, not
    raised, so callers can print the table that differs (see `MigrationReport.ok`).
    """
    if batch_rows < 1:
        raise MigrationError(f"batch size must be at least 1, got {batch_rows}")
    started = time.monotonic()
    progress = progress or (lambda *_: None)
    status = status or (lambda _: None)
    stop = stop or threading.Event()
    wanted = list(dict.fromkeys([*RAG_TABLES, *tables]))
    with connect(source_dsn, "source", read_only=True) as src, connect(target_dsn, "target") as tgt:
        if _identity(src) == _identity(tgt):
            raise MigrationError("source and target are the same database; nothing was written")
        if apply_schema:
            from migration.schema import apply_schema as apply_project_schema

            apply_project_schema(target_dsn)
        sources = {name: read_table(src, name, "source") for name in wanted}
        targets = {name: read_table(tgt, name, "target") for name in wanted}
        # Every refusal comes here, before the first write (bookkeeping included).
        for name in wanted:
            _check_columns(sources[name], targets[name])
        _preflight(tgt, targets)
        levels = foreign_key_levels(tgt, wanted)
        _prepare_bookkeeping(tgt)
        counts = {
            name: src.execute(sql.SQL("SELECT count(*) FROM {}").format(_ident(sources[name]))).fetchone()[0]
            for name in wanted
        }

    reports: dict[str, TableReport] = {}
    lock = threading.Lock()

    def locked_progress(*args) -> None:
        with lock:
            progress(*args)

    def locked_status(message: str) -> None:
        with lock:
            status(message)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for level in levels:
            futures = {
                name: pool.submit(
                    _copy_table,
                    source_dsn,
                    target_dsn,
                    sources[name],
                    targets[name],
                    batch_rows,
                    counts[name],
                    locked_progress,
                    locked_status,
                    stop,
                )
                for name in level
            }
            errors = []
            for name, future in futures.items():
                try:
                    reports[name] = future.result()
                except MigrationInterruptedError as err:
                    errors.append(err)
            if errors:
                raise MigrationInterruptedError(
                    "stopped between batches; every batch copied so far is saved with its checkpoint: "
                    "run the same command again to resume"
                )

    report = MigrationReport(tables=[reports[name] for name in wanted])
    with ThreadPoolExecutor(max_workers=2) as pool:
        for table_report in report.tables:
            if stop.is_set():
                raise MigrationInterruptedError(
                    "stopped during verification; the copy is complete: a rerun only verifies"
                )
            locked_status(f"{table_report.table}: verifying (row count and checksum on both sides)")
            source_sum = pool.submit(table_checksum, source_dsn, "source", sources[table_report.table])
            target_sum = pool.submit(table_checksum, target_dsn, "target", sources[table_report.table])
            (table_report.source_rows, src_hash), (table_report.target_rows, tgt_hash) = (
                source_sum.result(),
                target_sum.result(),
            )
            table_report.checksum_match = src_hash == tgt_hash

    with connect(target_dsn, "target") as tgt:
        for name in wanted:
            _fix_sequences(tgt, targets[name])
        schemas = sorted({sources[name].schema for name in wanted})
        for view in materialized_views(tgt, schemas):
            status(f"{view}: refreshing the materialized view")
            schema, name = view.split(".", 1)
            tgt.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(schema, name)))
            report.refreshed_views.append(view)
    report.duration_s = time.monotonic() - started
    return report
