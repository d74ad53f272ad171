"""Pure renderer of the NGINX load balancer in front of the Qdrant nodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# `http2 on;` replaced `listen … http2` in 1.25.1; `server … resolve` reached OSS in 1.27.3.
HTTP2_DIRECTIVE_SINCE = (1, 25, 1)
UPSTREAM_RESOLVE_SINCE = (1, 27, 3)
DOCKER_DNS = "127.0.0.11"
LB_HEALTH_PATH = "/lb-healthz"
"""Answered by nginx itself: the LB's own health check (Swarm restarts or rolls back an LB task
that fails it); the nodes' health is nginx's passive checks' business, not the LB task's."""


METRICS_PORT = 9113
"""Each LB task's own Prometheus endpoint (`/metrics`, the overlay only, never published)."""
METRICS_PATH = "/metrics"
# nginx's connection gauges in Prometheus's text format, named as nginx-prometheus-exporter
# names them (collector/nginx.go), from the stub_status module's variables. The exporter itself
# reads one stub_status URL given at start (exporter.go: `--nginx.scrape-uri`, no per-target
# probe), and a Swarm service has no side-car: beside N LB tasks behind one name it would read a
# different task on each scrape. nginx answering for itself, each task is its own target.
_CONNECTION_GAUGES = {
    "active": "Active client connections",
    "reading": "Connections where nginx is reading the request header",
    "writing": "Connections where nginx is writing the response back to the client",
    "waiting": "Idle client connections",
}


@dataclass(frozen=True)
class Upstream:
    """One Qdrant node as NGINX reaches it."""

    host: str
    rest_port: int = 6333
    grpc_port: int = 6334


@dataclass(frozen=True)
class LbTls:
    """TLS on the published ports: where the certificate chain and its key are mounted."""

    certificate_path: str
    key_path: str
    rest_port: int = 6443
    grpc_port: int = 6444


@dataclass(frozen=True)
class LbOptions:
    """How the load balancer listens and behaves. Defaults are the container's."""

    nginx_version: tuple[int, ...]
    """Version of the nginx that will run the file; picks version-dependent syntax."""
    rest_port: int = 6333
    grpc_port: int = 6334
    listen_host: str = ""
    """Empty: all interfaces (inside the container). Tests bind 127.0.0.1."""
    max_fails: int = 2
    fail_timeout: str = "10s"
    keepalive: int = 32
    max_body: str = "32m"
    """Qdrant's own REST limit (service.max_request_size_mb: 32); nginx's default is 1m."""
    connect_timeout: str = "2s"
    read_timeout: str = "60s"
    next_upstream_tries: int = 3
    docker_dns: bool = True
    """Re-resolve node names through Docker's DNS, so a recreated node's new IP is picked up."""
    worker_processes: str = "auto"
    pid_path: str = "/var/run/nginx.pid"
    error_log: str = "stderr warn"
    temp_dir: str | None = None
    """Where request-body and proxy temp files go; None keeps nginx's compiled-in paths."""
    tls: LbTls | None = None
    """TLS listeners beside the plaintext ones (which stay for the stack's own network)."""
    metrics_port: int = METRICS_PORT


# Qdrant's POST routes that may be repeated on another node (qdrant src/actix/api/*.rs):
# read-only searches and queries, and point writes keyed by id or filter.
RETRYABLE_REST_POSTS = (
    "^/collections/[^/]+/(facet|points(/(search|query|recommend|discover)"
    "(/(batch|groups|matrix/pairs|matrix/offsets))?|/scroll|/count|/delete|/batch"
    "|/payload(/delete|/clear)?|/vectors/delete)?)$"
)
# The same calls over gRPC (qdrant lib/api/src/grpc/proto/points_service.proto).
RETRYABLE_GRPC_CALLS = (
    r"^/qdrant\.Points/(Search|SearchBatch|SearchGroups|SearchMatrixPairs|SearchMatrixOffsets|Query"
    "|QueryBatch|QueryGroups|Recommend|RecommendBatch|RecommendGroups|Discover|DiscoverBatch|Scroll"
    "|Count|Get|Facet|Upsert|Delete|UpdateVectors|DeleteVectors|SetPayload|OverwritePayload"
    "|DeletePayload|ClearPayload|UpdateBatch)$"
)


def _rest_location(match: str, options: LbOptions, retry_posts: bool) -> list[str]:
    # Without `non_idempotent`, nginx passes a POST to the next node only if the first one
    # never received it (connection refused); GET, PUT and DELETE are always retried.
    retry_on = "error timeout http_502 http_503 http_504" + (" non_idempotent" if retry_posts else "")
    return [
        f"        location {match} {{",
        "            proxy_pass http://qdrant_rest;",
        "            # Keepalive to the nodes needs HTTP/1.1 and an empty Connection header.",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $host;",
        f"            proxy_connect_timeout {options.connect_timeout};",
        f"            proxy_read_timeout {options.read_timeout};",
        f"            proxy_send_timeout {options.read_timeout};",
        f"            proxy_next_upstream {retry_on};",
        f"            proxy_next_upstream_tries {options.next_upstream_tries};",
        "            proxy_next_upstream_timeout 15s;",
        "        }",
    ]


def _grpc_location(match: str, options: LbOptions, retry_posts: bool) -> list[str]:
    retry_on = "error timeout" + (" non_idempotent" if retry_posts else "")
    return [
        f"        location {match} {{",
        "            grpc_pass grpc://qdrant_grpc;",
        f"            grpc_connect_timeout {options.connect_timeout};",
        f"            grpc_read_timeout {options.read_timeout};",
        f"            grpc_next_upstream {retry_on};",
        f"            grpc_next_upstream_tries {options.next_upstream_tries};",
        "        }",
    ]


def render_qdrant_lb_conf(upstreams: Sequence[Upstream], options: LbOptions) -> str:
    """nginx.conf text: an HTTP/1.1 REST listener and an HTTP/2 gRPC listener over all nodes."""
    if not upstreams:
        raise ValueError("the Qdrant load balancer needs at least one upstream")
    resolve = options.docker_dns and options.nginx_version >= UPSTREAM_RESOLVE_SINCE
    http2_directive = options.nginx_version >= HTTP2_DIRECTIVE_SINCE
    server_params = f"max_fails={options.max_fails} fail_timeout={options.fail_timeout}"
    if resolve:
        server_params += " resolve"

    def listen(port: int, http2: bool = False, ssl: bool = False) -> str:
        address = f"{options.listen_host}:{port}" if options.listen_host else str(port)
        suffix = (" ssl" if ssl else "") + (" http2" if http2 and not http2_directive else "")
        return f"listen {address}{suffix};"

    def tls_lines() -> list[str]:
        tls = options.tls
        return [
            f"        ssl_certificate {tls.certificate_path};",
            f"        ssl_certificate_key {tls.key_path};",
            "        ssl_protocols TLSv1.2 TLSv1.3;",
            "        ssl_session_cache shared:tls:10m;",
        ]

    def rest_server(port: int, ssl: bool) -> list[str]:
        return [
            "    server {",
            f"        {listen(port, ssl=ssl)}",
            *(tls_lines() if ssl else []),
            f"        location = {LB_HEALTH_PATH} {{",
            '            return 200 "ok\\n";',
            "        }",
            *_rest_location("/", options, retry_posts=False),
            "        # POSTs that only read (searches, queries, scroll, count, retrieve by id) and point",
            "        # writes keyed by id or filter (a repeat leaves the same state) may be retried on",
            "        # the next node. Every other POST (snapshots, aliases, cluster operations, shard",
            "        # cleanup, /cluster/recover) reaches one node at most once.",
            *_rest_location(f"~ {RETRYABLE_REST_POSTS}", options, retry_posts=True),
            "    }",
            "",
        ]

    def metrics_server(port: int) -> list[str]:
        body = "".join(
            f"# HELP nginx_connections_{kind} {what}\\n# TYPE nginx_connections_{kind} gauge\\n"
            f"nginx_connections_{kind} $connections_{kind}\\n"
            for kind, what in _CONNECTION_GAUGES.items()
        )
        return [
            "    server {",
            f"        {listen(port)}",
            f"        location = {METRICS_PATH} {{",
            '            default_type "text/plain; version=0.0.4";',
            f'            return 200 "{body}";',
            "        }",
            "        location / {",
            "            return 404;",
            "        }",
            "    }",
            "",
        ]

    def grpc_server(port: int, ssl: bool) -> list[str]:
        return [
            "    server {",
            f"        {listen(port, http2=True, ssl=ssl)}",
            *(["        http2 on;"] if http2_directive else []),
            *(tls_lines() if ssl else []),
            "        # Every gRPC call is a POST: the same split as on the REST listener.",
            *_grpc_location("/", options, retry_posts=False),
            *_grpc_location(f"~ {RETRYABLE_GRPC_CALLS}", options, retry_posts=True),
            "    }",
            "",
        ]

    def upstream_block(name: str, port_of: str) -> list[str]:
        lines = [f"    upstream {name} {{"]
        if resolve:
            # `resolve` needs the upstream state in shared memory.
            lines.append(f"        zone {name} 64k;")
        for node in upstreams:
            lines.append(f"        server {node.host}:{getattr(node, port_of)} {server_params};")
        lines.append(f"        keepalive {options.keepalive};")
        lines.append("    }")
        return lines

    temp_paths: list[str] = []
    if options.temp_dir:
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            temp_paths.append(f"    {kind}_temp_path {options.temp_dir}/{kind};")

    lines = [
        "# Rendered by rag-infra (components/qdrant/lb_config.py). Do not edit by hand.",
        f"worker_processes {options.worker_processes};",
        f"pid {options.pid_path};",
        f"error_log {options.error_log};",
        "",
        "events {",
        "    worker_connections 4096;",
        "}",
        "",
        "http {",
        "    access_log off;",
        f"    client_max_body_size {options.max_body};",
        *temp_paths,
    ]
    if resolve:
        lines.append(f"    resolver {DOCKER_DNS} valid=10s ipv6=off;")
    lines += [*upstream_block("qdrant_rest", "rest_port"), *upstream_block("qdrant_grpc", "grpc_port"), ""]
    lines += metrics_server(options.metrics_port)
    lines += rest_server(options.rest_port, ssl=False) + grpc_server(options.grpc_port, ssl=False)
    if options.tls:
        lines += rest_server(options.tls.rest_port, ssl=True) + grpc_server(options.tls.grpc_port, ssl=True)
    lines[-1:] = ["}", ""]
    return "\n".join(lines)
