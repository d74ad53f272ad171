#!/usr/bin/python3
"""Stand-in for Neon's compute_ctl: takes the flags and the `--config` JSON the program renders,
refuses what compute_ctl refuses, and needs what it needs at start (the pageserver with the
spec's timeline, a quorum of safekeepers) before it runs Postgres with the spec's roles and
databases. Every start is a fresh start, as with the real compute (no volume)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, "/opt/standin")
from standin import die, reachable, serve_status, wait_reachable

from tests.support.fake_http import PlainText
from tests.support.fake_metrics import EXPOSITIONS

PAGESERVER_HTTP_PORT = 9898
EXTERNAL_HTTP_PORT = 3080
"""compute_ctl's external HTTP server (`--external-http-port`), /metrics unauthenticated
(compute_tools/src/http/server.rs): up from the start, before Postgres is."""
# GUCs stock Postgres knows; the Neon-only ones (neon.*, the walproposer) have no stand-in.
STOCK_GUCS = {
    "listen_addresses", "port", "max_connections", "shared_buffers", "wal_level",
    "wal_log_hints", "max_wal_senders", "max_replication_slots", "wal_sender_timeout",
    "wal_keep_size", "password_encryption", "restart_after_crash",
}  # fmt: skip


def connstring(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split())


def main() -> None:
    parser = argparse.ArgumentParser(prog="compute_ctl")
    for flag in ("--pgdata", "--connstr", "--pgbin", "--compute-id", "--config"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args()
    try:
        config = json.loads(Path(args.config).read_text())
        spec = config["spec"]
        config["compute_ctl_config"]["jwks"]
        tenant, timeline = spec["tenant_id"], spec["timeline_id"]
        cluster = spec["cluster"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        die(f"cannot read compute config {args.config}: {err!r}")
    if not (
        isinstance(tenant, str) and len(tenant) == 32 and isinstance(timeline, str) and len(timeline) == 32
    ):
        die(f"invalid tenant/timeline id in spec: {tenant!r}/{timeline!r}")
    metrics = (200, EXPOSITIONS["neon-compute"].encode(), PlainText.content_type)
    serve_status("", EXTERNAL_HTTP_PORT, {"/metrics": metrics})

    # basebackup from the pageserver: it must hold the timeline.
    pageserver = connstring(spec["pageserver_connstring"])
    wait_reachable(pageserver["host"], int(pageserver["port"]), 30, "pageserver")
    url = f"http://{pageserver['host']}:{PAGESERVER_HTTP_PORT}/v1/tenant/{tenant}/timeline/{timeline}"
    try:
        urllib.request.urlopen(url, timeout=5).read()
    except OSError as err:
        die(f"basebackup failed: timeline {tenant}/{timeline} not on the pageserver: {err}")
    # sync-safekeepers needs a majority of the spec's safekeepers.
    keepers = spec["safekeeper_connstrings"]
    up = [k for k in keepers if reachable(*k.rsplit(":", 1)[:1], int(k.rsplit(":", 1)[1]))]
    if len(up) * 2 <= len(keepers):
        die(f"sync-safekeepers: {len(up)} of {len(keepers)} safekeepers reachable, no quorum")

    pgbin = Path(args.pgbin).parent
    pgdata = Path(args.pgdata)
    shutil.rmtree(pgdata, ignore_errors=True)
    subprocess.run(
        [
            pgbin / "initdb",
            "-D",
            pgdata,
            "-U",
            "cloud_admin",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhost all cloud_admin 127.0.0.1/32 trust\nhost all cloud_admin ::1/128 trust\n"
        "host all all all scram-sha-256\n"
    )
    settings = {s["name"]: s["value"] for s in cluster["settings"]}
    with (pgdata / "postgresql.conf").open("a") as conf:
        for name, value in settings.items():
            if name in STOCK_GUCS:
                conf.write(f"{name} = '{value}'\n")
    port = settings.get("port", "5432")
    postgres = subprocess.Popen([args.pgbin, "-D", pgdata])
    signal.signal(signal.SIGTERM, lambda *_: postgres.send_signal(signal.SIGINT))
    for _ in range(100):
        if subprocess.run([pgbin / "pg_isready", "-q", "-h", "localhost", "-p", port]).returncode == 0:
            break
        time.sleep(0.2)
    # Values go in as psql variables (:"name" quotes an identifier, :'name' a literal).
    variables: list[str] = []
    statements = ["CREATE ROLE neon_superuser NOLOGIN CREATEDB CREATEROLE;"]
    for i, role in enumerate(cluster["roles"]):
        variables += ["-v", f"role{i}={role['name']}", "-v", f"secret{i}={role['encrypted_password']}"]
        statements.append(f"CREATE ROLE :\"role{i}\" LOGIN PASSWORD :'secret{i}' IN ROLE neon_superuser;")
    for i, database in enumerate(cluster["databases"]):
        variables += ["-v", f"db{i}={database['name']}", "-v", f"owner{i}={database['owner']}"]
        statements.append(f'CREATE DATABASE :"db{i}" OWNER :"owner{i}";')
    subprocess.run(
        [pgbin / "psql", "-v", "ON_ERROR_STOP=1", "-q", *variables, args.connstr],
        input="\n".join(statements),
        text=True,
        check=True,
    )
    sys.exit(postgres.wait())


if __name__ == "__main__":
    main()
