"""Pure renderers of Neon's configuration files (facts/neon.md §1, §2, §7).

pageserver.toml, identity.toml and metadata.json for the pageserver; the compute_ctl config
JSON; the inline TOML `--remote-storage` value of the safekeepers; and the nginx config of
the storage controller's compute-notification endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Ports and names inside the stack network.
PAGESERVER_ALIAS = "pageserver"
PAGESERVER_HTTP_PORT = 9898
BROKER_ALIAS = "storage-broker"
BROKER_PORT = 50051
CONTROLLER_ALIAS = "storage-controller"
CONTROLLER_PORT = 1234
# The pageserver's libpq port inside its container and on the stack network. It is fixed: the
# pageserver registers this address with the controller, which refuses a re-registration under
# another one forever ("Node is already registered with different address", service.rs
# node_register). `neon.pageserverPgPort` only moves the port published on the host.
PAGESERVER_PG_PORT = 6400
NOTIFY_ALIAS = "neon-notify"
NOTIFY_PORT = 8080
MINIO_ALIAS = "minio"
MINIO_PORT = 9000
SAFEKEEPER_PG_PORT = 5454
COMPUTE_PG_PORT = 55433
COMPUTE_HTTP_PORT = 3080
PAGESERVER_NODE_ID = 1
AVAILABILITY_ZONE = "local"


def toml_value(value: Any) -> str:
    """One TOML value: strings, ints, bools, lists and inline tables (all this project needs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def render_toml(values: Mapping[str, Any]) -> str:
    """Top-level `key = value` lines."""
    return "".join(f"{key} = {toml_value(value)}\n" for key, value in values.items())


PAGESERVER_PREFIX = "/pageserver/"
"""The pageserver's `prefix_in_bucket`."""
PAGESERVER_TENANTS = f"{PAGESERVER_PREFIX.strip('/')}/tenants/"
"""Where its tenants are in the bucket: the S3 client trims the prefix's slashes and joins with
one (libs/remote_storage/src/s3_bucket.rs); each tenant shard is a folder under `tenants/`
(pageserver/src/tenant.rs TENANTS_SEGMENT_NAME, remote_timeline_client.rs remote_tenant_path)."""


@dataclass(frozen=True)
class RemoteStorage:
    """The S3 bucket (MinIO) shared by the pageserver and the safekeepers."""

    bucket: str
    region: str
    endpoint: str = f"http://{MINIO_ALIAS}:{MINIO_PORT}"

    def table(self, prefix: str) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "bucket_name": self.bucket,
            "bucket_region": self.region,
            "prefix_in_bucket": prefix,
        }


def render_aws_credentials(access_key_id: str, secret_access_key: str) -> str:
    """An AWS shared credentials file with the `default` profile: the S3 key pair of the
    pageserver and the safekeepers, mounted as a Swarm secret."""
    for what, value in (("access key id", access_key_id), ("secret access key", secret_access_key)):
        if not value or any(c in value for c in "\r\n[]"):
            raise ValueError(f"an S3 {what} must be one non-empty line without brackets")
    return f"[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret_access_key}\n"


def render_pageserver_toml(storage: RemoteStorage) -> str:
    """pageserver.toml with a real storage controller (no emergency mode, facts §7.1, §7.6)."""
    return render_toml(
        {
            "broker_endpoint": f"http://{BROKER_ALIAS}:{BROKER_PORT}",
            "pg_distrib_dir": "/usr/local/",
            # Explicit addresses: the built-in defaults are 127.0.0.1:64000 and 127.0.0.1:9898.
            "listen_pg_addr": f"0.0.0.0:{PAGESERVER_PG_PORT}",
            "listen_http_addr": f"0.0.0.0:{PAGESERVER_HTTP_PORT}",
            "remote_storage": storage.table(PAGESERVER_PREFIX),
            "control_plane_api": f"http://{CONTROLLER_ALIAS}:{CONTROLLER_PORT}/upcall/v1/",
            "availability_zone": AVAILABILITY_ZONE,
        }
    )


def render_identity_toml(node_id: int = PAGESERVER_NODE_ID) -> str:
    return render_toml({"id": node_id})


def render_metadata_json() -> str:
    """The pageserver registers itself with the controller from this file on every start."""
    return json.dumps(
        {
            "host": PAGESERVER_ALIAS,
            "port": PAGESERVER_PG_PORT,
            "http_host": PAGESERVER_ALIAS,
            "http_port": PAGESERVER_HTTP_PORT,
            "availability_zone_id": AVAILABILITY_ZONE,
        },
        indent=2,
    )


def safekeeper_alias(index: int) -> str:
    return f"safekeeper-{index}"


def safekeeper_connstrings(count: int) -> list[str]:
    return [f"{safekeeper_alias(i)}:{SAFEKEEPER_PG_PORT}" for i in range(count)]


def safekeeper_command(index: int, storage: RemoteStorage, http_port: int) -> list[str]:
    """safekeeper CLI: unique id (1-based, written to its datadir on first start), a
    resolvable --listen-pg (published to the broker as its address), broker and S3."""
    return [
        "/usr/local/bin/safekeeper",
        f"--id={index + 1}",
        f"--listen-pg={safekeeper_alias(index)}:{SAFEKEEPER_PG_PORT}",
        f"--listen-http=0.0.0.0:{http_port}",
        f"--broker-endpoint=http://{BROKER_ALIAS}:{BROKER_PORT}",
        f"--availability-zone={AVAILABILITY_ZONE}-{index + 1}",
        "-D",
        "/data",
        f"--remote-storage={toml_value(storage.table('/safekeeper/'))}",
    ]


def scram_verifier(password: str, salt_b64: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for `password` (RFC 5802/7677, Postgres'
    `scram_build_secret`). compute_ctl writes a value starting with `SCRAM-SHA-256` as given
    (compute_tools/src/pg_helpers.rs `to_pg_options`); pgbouncer's auth_file takes the same
    string and can then log in to Postgres on the client's behalf."""
    salt = base64.b64decode(salt_b64)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True)
class ComputeSpec:
    """What one compute needs to know: its timeline, the storage tier and the app role."""

    tenant_id: str
    timeline_id: str
    pageserver_pg_port: int
    safekeepers: int
    database: str
    user: str
    password: str
    password_salt: str
    """16 random bytes, base64, kept in state: the verifier must not change between runs."""
    pg_version: int


def _setting(name: str, value: str, vartype: str = "string") -> dict[str, str]:
    return {"name": name, "value": value, "vartype": vartype}


def render_compute_config(spec: ComputeSpec) -> str:
    """compute_ctl's `--config` JSON (`ComputeConfig`): spec + compute_ctl_config."""
    pageserver = f"host={PAGESERVER_ALIAS} port={spec.pageserver_pg_port}"
    safekeepers = safekeeper_connstrings(spec.safekeepers)
    settings = [
        _setting("listen_addresses", "0.0.0.0"),  # noqa: S104 (inside the container; published by Docker)
        _setting("port", str(COMPUTE_PG_PORT), "integer"),
        _setting("max_connections", "100", "integer"),
        _setting("shared_buffers", "128MB"),
        _setting("wal_level", "logical", "enum"),
        _setting("wal_log_hints", "on", "bool"),
        _setting("max_wal_senders", "10", "integer"),
        _setting("max_replication_slots", "10", "integer"),
        _setting("wal_sender_timeout", "5s"),
        _setting("wal_keep_size", "0"),
        _setting("password_encryption", "scram-sha-256", "enum"),
        _setting("restart_after_crash", "off", "bool"),
        _setting("synchronous_standby_names", "walproposer"),
        _setting("shared_preload_libraries", "neon,pg_stat_statements"),
        # The dedicated spec fields below are preferred; these GUCs are compute_ctl's fallback.
        _setting("neon.pageserver_connstring", pageserver),
        _setting("neon.safekeepers", ",".join(safekeepers)),
        _setting("neon.tenant_id", spec.tenant_id),
        _setting("neon.timeline_id", spec.timeline_id),
    ]
    config = {
        "spec": {
            "format_version": 1.0,
            "suspend_timeout_seconds": -1,
            "operation_uuid": "00000000-0000-0000-0000-000000000000",
            "tenant_id": spec.tenant_id,
            "timeline_id": spec.timeline_id,
            "pageserver_connstring": pageserver,
            "safekeeper_connstrings": safekeepers,
            "mode": "Primary",
            "skip_pg_catalog_updates": False,
            "cluster": {
                "cluster_id": f"rag-{spec.tenant_id[:8]}",
                "name": "rag",
                "state": "restarted",
                "roles": [
                    {
                        "name": spec.user,
                        "encrypted_password": scram_verifier(spec.password, spec.password_salt),
                        "options": None,
                    }
                ],
                "databases": [{"name": spec.database, "owner": spec.user, "options": None}],
                "settings": settings,
            },
            "delta_operations": [],
        },
        # Required by compute_ctl; an empty key set means no external caller is authorised on
        # its HTTP API (the stack does not use it).
        "compute_ctl_config": {"jwks": {"keys": []}},
    }
    return json.dumps(config, indent=2)


def render_notify_conf(port: int = NOTIFY_PORT) -> str:
    """nginx config answering the storage controller's compute hooks with 200.

    With one pageserver the attachment never moves after the first attach, so an
    acknowledgement is all the hook needs to do (facts/neon.md §7.8).
    """
    return "\n".join(
        [
            "# Rendered by rag-infra (components/neon/config.py). Do not edit by hand.",
            "worker_processes 1;",
            "pid /tmp/nginx.pid;",
            "error_log stderr warn;",
            "events { worker_connections 256; }",
            "http {",
            "    access_log off;",
            "    server {",
            f"        listen {port};",
            "        location = /notify-attach { return 200 '{}'; }",
            "        location = /notify-safekeepers { return 200 '{}'; }",
            "        location / { return 404; }",
            "    }",
            "}",
            "",
        ]
    )


COMPUTE_ALIAS = "neon-compute"  # the main compute on the stack network; a branch's adds -<name>
POOLER_ALIAS = "neon-pooler"
POOLER_PORT = 6432  # inside the container and on the stack network; neon.poolerPort is published
POOLER_DIR = "/var/db/postgres/pgbouncer"  # the image's own folder for it, owned by postgres
POOLER_TLS_CERT = f"{POOLER_DIR}/tls/certificate.pem"
POOLER_TLS_KEY = "/run/secrets/pooler-tls-key.pem"


def render_pgbouncer_ini(
    database: str,
    compute_host: str = COMPUTE_ALIAS,
    compute_port: int = COMPUTE_PG_PORT,
    listen: str = f"0.0.0.0:{POOLER_PORT}",
    directory: str = POOLER_DIR,
    tls: tuple[str, str] | None = None,
) -> str:
    """pgbouncer.ini for the pooler beside the compute: transaction pooling, SCRAM.

    Its settings follow the ini the compute image ships (compute/etc/pgbouncer.ini), except
    that clients are checked against an auth_file holding the role's SCRAM verifier (the same
    one the compute stores), so no superuser is needed for auth_query. With `tls` (certificate
    and key paths) every client must use TLS (`client_tls_sslmode = require`); libpq's default
    `sslmode=prefer` negotiates it by itself, so the stack's own clients need no change.
    """
    host, port = listen.rsplit(":", 1)
    client_tls = {"client_tls_sslmode": "disable"}
    if tls:
        client_tls = {
            "client_tls_sslmode": "require",
            "client_tls_cert_file": tls[0],
            "client_tls_key_file": tls[1],
            # Loaded at start even though client certificates are never asked for; unset, it is
            # the build's default CA bundle, which an image without ca-certificates lacks
            # ("TLS setup failed: failed to load CA", seen on the e2e engine).
            "client_tls_ca_file": tls[0],
            "client_tls_protocols": "tlsv1.2,tlsv1.3",
        }
    return render_ini(
        {
            "databases": {database: f"host={compute_host} port={compute_port} dbname={database}"},
            "pgbouncer": {
                "listen_addr": host,
                "listen_port": port,
                "auth_type": "scram-sha-256",
                "auth_file": f"{directory}/userlist.txt",
                "pool_mode": "transaction",
                "max_client_conn": "1000",
                "default_pool_size": "20",
                "max_prepared_statements": "0",
                "ignore_startup_parameters": "extra_float_digits",
                **client_tls,
                # To the compute: the stack's encrypted overlay network.
                "server_tls_sslmode": "disable",
                "unix_socket_dir": "",
                "pidfile": f"{directory}/pgbouncer.pid",
                "log_connections": "0",
                "log_disconnections": "0",
            },
        }
    )


def render_ini(sections: Mapping[str, Mapping[str, str]]) -> str:
    header = "; Rendered by rag-infra (components/neon/config.py). Do not edit by hand.\n"
    return header + "".join(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items()) + "\n"
        for name, values in sections.items()
    )


def render_pgbouncer_userlist(user: str, verifier: str) -> str:
    """pgbouncer's auth_file: `"user" "secret"` lines."""
    return f'"{user}" "{verifier}"\n'
