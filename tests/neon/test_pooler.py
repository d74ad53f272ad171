"""The pooler's rendered pgbouncer.ini in a real pgbouncer (sid's, the nearest release to the
compute image's 1.24.1), against a real PostgreSQL whose role is created the way the compute
config creates it: with the SCRAM verifier the program computes."""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from components.neon.config import render_pgbouncer_ini, render_pgbouncer_userlist, scram_verifier
from tests.support.certificates import self_signed
from tests.support.nginx import free_port, wait_for_port
from tests.support.postgres import SYSTEM_USER

PGBOUNCER = (
    Path(os.environ.get("RAG_INFRA_PGBOUNCER", "/opt/pgbouncer")) / "root" / "usr" / "sbin" / "pgbouncer"
)
PASSWORD = "s3cret-rag-password"
SALT = "qmD4tV4o0iTqVfG1q9Uf5w=="


@pytest.fixture
def rag_role(postgres_server):
    """The `rag` role and database, the role's password given as the program's SCRAM verifier."""
    dsn = postgres_server.create_database(f"rag_pool_{time.monotonic_ns()}")
    database = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    role = f"rag_{time.monotonic_ns()}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{scram_verifier(PASSWORD, SALT)}'")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO {role}')  # as the compute spec makes it
    return role, database


def test_the_verifier_is_what_postgres_stores_and_accepts(postgres_server, rag_role):
    role, database = rag_role
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)).fetchone()[0]
    assert stored == scram_verifier(PASSWORD, SALT)
    url = f"postgresql://{role}:{PASSWORD}@127.0.0.1:{postgres_server.port}/{database}"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == role
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url.replace(PASSWORD, "wrong"))


@pytest.fixture
def pgbouncer(request, tmp_path, postgres_server, rag_role):
    """pgbouncer with the rendered ini, only its addresses and folder moved for a test machine;
    with TLS (`indirect` param "tls") on a real self-signed certificate."""
    role, database = rag_role
    if not PGBOUNCER.exists():
        raise RuntimeError(f"no pgbouncer at {PGBOUNCER}: .ci/run installs it with .ci/sid-binary.sh")
    port = free_port()
    folder = tmp_path / "pgbouncer"
    folder.mkdir()
    tls = None
    if getattr(request, "param", None) == "tls":
        pair = self_signed(folder)
        tls = (str(pair.certificate_path), str(pair.key_path))
    ini = render_pgbouncer_ini(
        database, compute_host="127.0.0.1", compute_port=postgres_server.port, listen=f"127.0.0.1:{port}",
        directory=str(folder), tls=tls,
    )  # fmt: skip
    (folder / "pgbouncer.ini").write_text(ini)
    (folder / "userlist.txt").write_text(render_pgbouncer_userlist(role, scram_verifier(PASSWORD, SALT)))
    command = [str(PGBOUNCER), str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses root, as the image runs it as postgres
        uid = pwd.getpwnam(SYSTEM_USER).pw_uid
        for path in [folder, *folder.iterdir()]:
            os.chown(path, uid, -1)
        for path in folder.parents:
            path.chmod(path.stat().st_mode | 0o011)
        command[1:1] = ["-u", SYSTEM_USER]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_port(port)
        yield f"postgresql://{role}:{PASSWORD}@127.0.0.1:{port}/{database}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_client_logs_in_through_the_pooler_and_runs_transactions(pgbouncer):
    with psycopg.connect(pgbouncer, autocommit=True) as conn:
        conn.execute("CREATE TABLE pooled (n int)")
        for n in range(5):
            with conn.transaction():
                conn.execute("INSERT INTO pooled VALUES (%s)", (n,))
        assert conn.execute("SELECT count(*) FROM pooled").fetchone()[0] == 5


def test_a_wrong_password_is_refused_by_the_pooler(pgbouncer):
    with pytest.raises(psycopg.OperationalError, match="authentication failed"):
        psycopg.connect(pgbouncer.replace(PASSWORD, "wrong"))


@pytest.mark.parametrize("pgbouncer", ["tls"], indirect=True)
def test_with_tls_the_pooler_takes_tls_clients_only(pgbouncer):
    """client_tls_sslmode = require: libpq's default (prefer) and sslmode=require log in over
    TLS; a plaintext client is refused."""
    for url in (pgbouncer, f"{pgbouncer}?sslmode=require"):
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(f"{pgbouncer}?sslmode=disable")


def test_without_tls_the_pooler_speaks_plaintext(pgbouncer):
    with psycopg.connect(f"{pgbouncer}?sslmode=disable", autocommit=True) as conn:
        assert not conn.pgconn.ssl_in_use


def test_the_ini_is_what_the_image_runs():
    ini = render_pgbouncer_ini("rag")
    assert "rag = host=neon-compute port=55433 dbname=rag" in ini
    assert "pool_mode = transaction" in ini and "auth_type = scram-sha-256" in ini
    assert "listen_addr = 0.0.0.0" in ini and "listen_port = 6432" in ini
    assert "auth_file = /var/db/postgres/pgbouncer/userlist.txt" in ini
