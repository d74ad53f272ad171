#!/usr/bin/python3
"""The Neon storage services, as stand-ins: what each real binary takes on its command line
and in its files, what it needs from its peers at start, and the HTTP API the stack uses.

- storage_broker `--listen-addr=H:P`: `GET /status` (storage_broker/src/bin/storage_broker.rs).
- storage_controller `--listen=H:P --dev --control-plane-url=U --db-connect-timeout=D ...` and
  `DATABASE_URL`: it exits when the database does not answer within the timeout
  (persistence.rs); `GET /ready`, `GET /status`, the tenant and timeline API of
  tests/support/fake_neon.py, and `POST /upcall/v1/re-attach` from pageservers. A tenant cannot
  be placed before a pageserver has attached ("No pageserver found", 409).
- pageserver `-D DIR`: reads DIR/pageserver.toml, identity.toml and metadata.json (it refuses
  to start without them) and writes its tenants under DIR; re-attaches to `control_plane_api`
  before its HTTP API answers;
  `GET /v1/status`, and a timeline GET answered from the controller's records.
- safekeeper `--id --listen-pg=H:P --listen-http=H:P --broker-endpoint=U -D DIR
  --remote-storage=...`: binds --listen-pg on the address its host name resolves to;
  `GET /v1/status`, timeline GET and DELETE (FakeSafekeeper).

The pageserver and the safekeepers find their S3 credentials as the SDK's default chain does
(libs/remote_storage/src/s3_bucket.rs, DefaultCredentialsChain): AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, else the profile (AWS_PROFILE, `default`) of the shared credentials file
AWS_SHARED_CREDENTIALS_FILE names (~/.aws/credentials by default; a missing file counts as
empty). The real ones would start without working credentials and fail on every upload; the
stand-ins check them against the bucket at start and exit, so the failure shows at once.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

sys.path.insert(0, "/opt/standin")
from standin import die, forever, host_port, listen_tcp, s3_authorization, serve_status, wait_reachable

from tests.support.fake_http import FakeJsonServer, PlainText
from tests.support.fake_metrics import EXPOSITIONS
from tests.support.fake_neon import FakeSafekeeper, FakeStorageController


def s3_credentials() -> tuple[str, str] | None:
    """(access key id, secret access key) from the environment or the shared credentials file."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return key, secret
    path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials")
    profiles = configparser.ConfigParser()
    try:
        profiles.read_string(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, configparser.Error) as err:
        die(f"cannot read the shared credentials file {path}: {err}")
    name = os.environ.get("AWS_PROFILE", "default")
    profile = profiles[name] if profiles.has_section(name) else {}
    key, secret = profile.get("aws_access_key_id"), profile.get("aws_secret_access_key")
    return (key, secret) if key and secret else None


def check_remote_storage(storage: dict) -> None:
    """The bucket answers a signed request with these credentials (retried while it starts)."""
    credentials = s3_credentials() or die(
        "no S3 credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor a profile in the "
        "shared credentials file"
    )
    url = f"{storage['endpoint'].rstrip('/')}/{storage['bucket_name']}"
    request = urllib.request.Request(
        url, method="HEAD", headers={"Authorization": s3_authorization(*credentials)}
    )
    for _ in range(30):
        try:
            urllib.request.urlopen(request, timeout=5).close()
            return
        except urllib.error.HTTPError as err:
            die(f"remote storage {url} answered HTTP {err.code} (403: the credentials are refused)")
        except OSError:
            time.sleep(1)
    die(f"remote storage {url} unreachable")


def broker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="storage_broker")
    parser.add_argument("--listen-addr", required=True)
    args = parser.parse_args(argv)
    # The broker answers HTTP/1 /metrics on its gRPC port (storage_broker.rs).
    metrics = (200, EXPOSITIONS["neon-storage-broker"].encode(), PlainText.content_type)
    serve_status(*host_port(args.listen_addr), {"/status": (200, b"{}"), "/metrics": metrics})
    forever()


def controller(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="storage_controller")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--dev", action="store_true")
    parser.add_argument("--control-plane-url", required=True)
    parser.add_argument("--max-offline-interval")
    parser.add_argument("--db-connect-timeout", default="5s")
    parser.add_argument("--heartbeat-interval")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or die("DATABASE_URL is not set")
    timeout = float(args.db_connect_timeout.removesuffix("s"))
    deadline = time.monotonic() + timeout
    # A real login (psql), as the controller's connection pool makes one.
    while subprocess.run(["psql", "-q", "-c", "SELECT 1", url], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            die(f"database connection timed out after {args.db_connect_timeout}")
        time.sleep(1)
    host, port = host_port(args.control_plane_url)
    wait_reachable(host, port, 30, "control plane hook")
    # Like the real one, it keeps its records in its database and loads them at start: a
    # restart keeps them, and a restored database brings back what it held.
    sql(url, f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (id INT PRIMARY KEY, state TEXT NOT NULL)")
    saved = sql(url, f"SELECT state FROM {STATE_TABLE} WHERE id = 1").strip()

    class Controller(FakeStorageController):
        bind = host_port(args.listen)
        attached: set[int] = set()

        def handle(self, method, path, body, headers):
            if path in ("/ready", "/status") and method == "GET":
                return 200, {}
            if path == "/upcall/v1/re-attach" and method == "POST":
                self.attached.add(body["node_id"])
                return 200, {"tenants": []}
            if path == "/v1/tenant" and method == "POST" and not self.attached:
                return 409, {"msg": "Conflict: Failed to schedule shard(s): No pageserver found"}
            with self.state:
                status, answer = super().handle(method, path, body, headers)
                if method != "GET" and status // 100 == 2:
                    timelines = [[t, tl, info] for (t, tl), info in self.timelines.items()]
                    state = json.dumps({"tenants": self.tenants, "timelines": timelines})
                    sql(
                        url,
                        f"INSERT INTO {STATE_TABLE} VALUES (1, :'state') "
                        "ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state",
                        state=state,
                    )
            return status, answer

    controller = Controller()
    if saved:
        state = json.loads(saved)
        controller.tenants = state["tenants"]
        controller.timelines = {(t, tl): info for t, tl, info in state["timelines"]}
    controller.__enter__()
    forever()


STATE_TABLE = "standin_controller_state"


def sql(url: str, statement: str, **variables: str) -> str:
    """One statement through psql (variables as psql's quoted :'name'); its rows, unaligned."""
    flags = [arg for name, value in variables.items() for arg in ("-v", f"{name}={value}")]
    done = subprocess.run(
        ["psql", "-qAt", "-v", "ON_ERROR_STOP=1", *flags, url, "-f", "-"],
        input=statement + ";\n",
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        die(f"the controller's database: {done.stderr.strip()}")
    return done.stdout


def pageserver(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="pageserver")
    parser.add_argument("-D", "--workdir", required=True)
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    try:
        config = tomllib.loads((workdir / "pageserver.toml").read_text())
        identity = tomllib.loads((workdir / "identity.toml").read_text())
        json.loads((workdir / "metadata.json").read_text())
    except (OSError, ValueError) as err:
        die(f"cannot load config from {workdir}: {err}")
    try:  # the real one keeps its tenants under the workdir: it must be able to write there
        (workdir / "tenants").mkdir(exist_ok=True)
    except OSError as err:
        die(f"cannot create {workdir}/tenants: {err}")
    check_remote_storage(config["remote_storage"])
    broker_host, broker_port = host_port(config["broker_endpoint"])
    wait_reachable(broker_host, broker_port, 30, "storage broker")
    upcall = config["control_plane_api"].rstrip("/")
    request = urllib.request.Request(
        f"{upcall}/re-attach",
        data=json.dumps({"node_id": identity["id"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    for _ in range(60):  # re-attach is retried until the controller answers
        try:
            urllib.request.urlopen(request, timeout=5).read()
            break
        except OSError:
            time.sleep(1)
    else:
        die(f"re-attach to {upcall} failed")
    controller_base = upcall.removesuffix("/upcall/v1")

    class Pageserver(FakeJsonServer):
        bind = host_port(config["listen_http_addr"])

        def handle(self, method, path, body, headers):
            if path == "/v1/status" and method == "GET":
                return 200, {"id": identity["id"]}
            if path == "/metrics" and method == "GET":
                return 200, PlainText(EXPOSITIONS["neon-pageserver"])
            parts = [p for p in path.split("?")[0].split("/") if p]
            if (
                method == "GET"
                and len(parts) == 5
                and parts[:2] == ["v1", "tenant"]
                and parts[3] == "timeline"
            ):
                try:
                    with urllib.request.urlopen(controller_base + path, timeout=5) as answer:
                        return 200, json.loads(answer.read())
                except urllib.error.HTTPError as err:
                    return err.code, {"msg": "NotFound: timeline"}
            return 404, {"msg": f"no route {method} {path}"}

    listen_tcp(*host_port(config["listen_pg_addr"]))
    Pageserver().__enter__()
    forever()


def safekeeper(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="safekeeper")
    for flag in ("--id", "--listen-pg", "--listen-http", "--broker-endpoint", "--remote-storage"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--availability-zone")
    parser.add_argument("-D", "--datadir", required=True)
    args = parser.parse_args(argv)
    remote = tomllib.loads(f"remote_storage = {args.remote_storage}")["remote_storage"]  # refused unless TOML
    try:
        (Path(args.datadir) / "safekeeper.id").write_text(args.id)
    except OSError as err:
        die(f"cannot write to the data directory {args.datadir}: {err}")
    check_remote_storage(remote)
    wait_reachable(*host_port(args.broker_endpoint), 30, "storage broker")
    listen_tcp(*host_port(args.listen_pg))

    class Safekeeper(FakeSafekeeper):
        bind = host_port(args.listen_http)

    Safekeeper(node_id=int(args.id)).__enter__()
    forever()


PROGRAMS = {
    "storage_broker": broker,
    "storage_controller": controller,
    "pageserver": pageserver,
    "safekeeper": safekeeper,
}

if __name__ == "__main__":
    PROGRAMS[Path(sys.argv[0]).name](sys.argv[1:])
