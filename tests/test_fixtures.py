"""The shared fixtures start real servers (later issues build on them)."""

import psycopg


def test_postgres_fixture_has_pgvector_and_pg_trgm(postgres_db):
    with psycopg.connect(postgres_db) as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE EXTENSION pg_trgm")
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        distance = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()[0]
    assert int(version) >= 180000
    assert distance == 1.0


def test_postgres_fixture_refuses_a_wrong_password(postgres_server):
    try:
        psycopg.connect(postgres_server.dsn(password="wrong"), connect_timeout=5).close()
    except psycopg.OperationalError as err:
        assert "password authentication failed" in str(err)
    else:
        raise AssertionError("a wrong password was accepted")
