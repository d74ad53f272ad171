#!/usr/bin/python3
"""Stand-in for the kong CLI (3.9), driven by the same KONG_* environment as the real one.

- `kong start`: DB-less (KONG_DATABASE=off) loads KONG_DECLARATIVE_CONFIG and refuses a
  missing or invalid file; with postgres it needs a bootstrapped database (else "Database needs
  bootstrapping", as kong/cmd/start.lua) and serves the configuration imported into it. The
  proxy is tests/support/fake_kong.py (routes, cors, jwt, rate-limit headers) on
  KONG_PROXY_LISTEN; the admin and status listeners answer `/status`. The pid file is written
  where `kong health` looks (KONG_PREFIX/pids/nginx.pid).
- `kong health` (kong/cmd/health.lua): healthy when PREFIX/.kong_env exists and that pid is alive.
- `kong migrations bootstrap|up|finish`, `kong config db_import FILE`: against KONG_PG_*.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, "/opt/standin")
from standin import die, forever, host_port, serve_status

PREFIX = Path(os.environ.get("KONG_PREFIX", "/usr/local/kong"))
PIDFILE = PREFIX / "pids" / "nginx.pid"


def psql(sql: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGPASSWORD": os.environ.get("KONG_PG_PASSWORD", "")}
    return subprocess.run(
        [
            "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
            "-h", os.environ.get("KONG_PG_HOST", "127.0.0.1"),
            "-p", os.environ.get("KONG_PG_PORT", "5432"),
            "-U", os.environ.get("KONG_PG_USER", "kong"),
            "-d", os.environ.get("KONG_PG_DATABASE", "kong"),
        ],
        input=sql, text=True, capture_output=True, env=env,
    )  # fmt: skip


def listen(variable: str) -> tuple[str, int] | None:
    value = os.environ.get(variable, "off")
    return None if value == "off" else host_port(value.split()[0])


def proxy_listeners() -> list[tuple[tuple[str, int], bool]]:
    """((host, port), ssl) of every KONG_PROXY_LISTEN entry (`addr:port [ssl] [http2] …`, comma
    separated, as kong/conf_loader parse_listeners reads them)."""
    value = os.environ.get("KONG_PROXY_LISTEN", "off")
    if value == "off":
        die("KONG_PROXY_LISTEN is off")
    listeners = []
    for entry in value.split(","):
        words = entry.split()
        listeners.append((host_port(words[0]), "ssl" in words[1:]))
    return listeners


def tls_context() -> ssl.SSLContext:
    """KONG_SSL_CERT and KONG_SSL_CERT_KEY, each a path or the PEM itself (kong/conf_loader);
    Kong refuses one without the other."""
    cert, key = os.environ.get("KONG_SSL_CERT"), os.environ.get("KONG_SSL_CERT_KEY")
    if bool(cert) != bool(key):
        die("ssl_cert_key must be specified" if cert else "ssl_cert must be specified")
    if not cert:
        die("an ssl listener without ssl_cert and ssl_cert_key (this stand-in generates no default)")
    files = []
    for value in (cert, key):
        if value.lstrip().startswith("-----BEGIN"):
            handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)  # noqa: SIM115
            handle.write(value)
            handle.close()
            value = handle.name
        elif not os.path.isfile(value):
            die(f"{value}: no such file (ssl_cert and ssl_cert_key take a path or PEM)")
        files.append(value)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*files)
    return context


def start() -> None:
    database = os.environ.get("KONG_DATABASE", "postgres")
    if database == "off":
        path = os.environ.get("KONG_DECLARATIVE_CONFIG") or die("KONG_DECLARATIVE_CONFIG is not set")
        try:
            kong_yml = Path(path).read_text()
        except OSError as err:
            die(f"error parsing declarative config file {path}: {err}")
    elif database == "postgres":
        answer = psql("SELECT config FROM standin_config ORDER BY id DESC LIMIT 1;")
        if answer.returncode != 0:
            die(f"Database needs bootstrapping or is older than Kong 1.0: {answer.stderr.strip()}")
        kong_yml = answer.stdout
    else:
        die(f"invalid KONG_DATABASE {database!r}")

    import yaml

    from tests.support.fake_kong import FakeKong

    config = yaml.safe_load(kong_yml)
    if not isinstance(config, dict) or "_format_version" not in config:
        die("declarative config: expected an object with _format_version")

    proxies = []
    for where, tls in proxy_listeners():

        class Proxy(FakeKong):
            bind = where

        proxy = Proxy(kong_yml)
        if tls:
            proxy.server.socket = tls_context().wrap_socket(proxy.server.socket, server_side=True)
        proxy.__enter__()
        proxies.append(proxy)

    def metrics() -> tuple[int, bytes, str]:
        # One node's counters over all its proxy listeners (one shared dict in the real plugin).
        counts: Counter[tuple[str, int]] = Counter()
        for proxy in proxies:
            counts.update(proxy.counts.copy())
        return 200, proxies[0].metrics(counts).encode(), "text/plain; version=0.0.4; charset=utf-8"

    status = {"/status": (200, b'{"database": {"reachable": true}}'), "/": (200, b"{}")}
    if where := listen("KONG_ADMIN_LISTEN"):
        serve_status(*where, status)
    if where := listen("KONG_STATUS_LISTEN"):
        # The prometheus plugin's /metrics is on the status listener (status_api.lua).
        serve_status(*where, {**status, "/metrics": metrics})
    PIDFILE.parent.mkdir(parents=True, exist_ok=True)
    (PREFIX / ".kong_env").write_text("")  # `kong prepare` writes it; `kong health` needs it
    PIDFILE.write_text(str(os.getpid()))
    forever()


def health() -> None:
    if not (PREFIX / ".kong_env").exists():
        die(f"Kong is not running at {PREFIX}")
    try:
        pid = int(PIDFILE.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        die(f"Kong is not running at {PREFIX}")
    print(f"Kong is healthy at {PREFIX}")


def migrations(step: str) -> None:
    if step == "bootstrap":
        answer = psql(
            "CREATE TABLE IF NOT EXISTS schema_meta (key text PRIMARY KEY);"
            "CREATE TABLE IF NOT EXISTS standin_config (id serial PRIMARY KEY, config text NOT NULL);"
        )
    elif step in ("up", "finish"):
        answer = psql("SELECT count(*) FROM schema_meta;")
    else:
        die(f"unknown migrations command {step!r}")
    if answer.returncode != 0:
        die(f"[PostgreSQL error] {answer.stderr.strip()}")


def db_import(path: str) -> None:
    text = Path(path).read_text()
    answer = psql(f"INSERT INTO standin_config (config) VALUES ($kongyml${text}$kongyml$);")
    if answer.returncode != 0:
        die(f"[PostgreSQL error] {answer.stderr.strip()}")


def main(argv: list[str]) -> None:
    match argv:
        case ["start"]:
            start()
        case ["health"]:
            health()
        case ["migrations", step]:
            migrations(step)
        case ["config", "db_import", path]:
            db_import(path)
        case _:
            die(f"unknown command {' '.join(argv)}")


if __name__ == "__main__":
    main(sys.argv[1:])
