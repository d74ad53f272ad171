"""What each service of the stack exports on /metrics, in Prometheus's text format: the metric
families the dashboards and alert rules read, named, typed and labelled as the sources define
them (values are made up). A dashboard or rule that reads a name no real service exports finds
no series here either.

Sources:
- Qdrant v1.19 src/common/metrics.rs (no prefix unless `service.metrics_prefix`); REST timings
  for status 200 only, buckets of lib/segment/src/common/operation_time_statistics.rs.
- Kong 3.9 kong/plugins/prometheus/exporter.lua (`kong_` prefix; http_requests_total with
  status_code_metrics, the latency histograms with latency_metrics).
- nginx: the LB's own /metrics (components/qdrant/lb_config.py), exporter names.
- Neon: pageserver/src/metrics.rs, safekeeper/src/metrics.rs, storage_controller/src/metrics.rs,
  storage_broker/src/metrics.rs, compute_tools/src/metrics.rs.
- MinIO RELEASE.2025-09-07 cmd/metrics-v2.go (every series with a `server` label).
"""

from __future__ import annotations

from collections.abc import Sequence

QDRANT_SECONDS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 10, 50)
KONG_UPSTREAM_MS = (25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000)
KONG_LATENCY_MS = (1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000)


def _labels(labels: str, extra: str = "") -> str:
    inner = ",".join(part for part in (labels, extra) if part)
    return f"{{{inner}}}" if inner else ""


def gauge(name: str, value: float, labels: str = "", kind: str = "gauge") -> str:
    return f"# HELP {name} {name}\n# TYPE {name} {kind}\n{name}{_labels(labels)} {value}\n"


def counter(name: str, value: float, labels: str = "") -> str:
    return gauge(name, value, labels, kind="counter")


def histogram(name: str, bounds: Sequence[float], observed: float, count: int, labels: str = "") -> str:
    """`count` observations of `observed` each, in the buckets `bounds`."""
    lines = [f"# HELP {name} {name}", f"# TYPE {name} histogram"]
    for bound in [*bounds, "+Inf"]:
        inside = count if bound == "+Inf" or observed <= bound else 0
        le = f'le="{bound}"'
        lines.append(f"{name}_bucket{_labels(labels, le)} {inside}")
    lines += [f"{name}_sum{_labels(labels)} {observed * count}", f"{name}_count{_labels(labels)} {count}"]
    return "\n".join(lines) + "\n"


def qdrant_exposition(peers: int, points: dict[str, int]) -> str:
    """A Qdrant node's /metrics: its view of the cluster and its collections."""
    return (
        gauge("cluster_peers_total", peers)
        + gauge("cluster_pending_operations_total", 0)
        + gauge("collection_dead_replicas", 0)
        + "".join(gauge("collection_points", count, f'id="{name}"') for name, count in points.items())
        + counter("rest_responses_total", 120, SEARCH)
        + histogram("rest_responses_duration_seconds", QDRANT_SECONDS, 0.004, 120, SEARCH)
    )


def minio_exposition(healthy: bool, drives_offline: int, server: str) -> str:
    """/minio/v2/metrics/cluster of one MinIO node: the store's health as that node sees it."""
    labels = f'server="{server}"'
    return (
        gauge("minio_cluster_health_status", int(healthy), labels)
        + gauge("minio_cluster_drive_offline_total", drives_offline, labels)
        + counter("minio_s3_requests_total", 10, f'api="putobject",{labels}')
    )


def kong_exposition(plugin: dict | None, requests: dict[tuple[str, int], int]) -> str:
    """Kong's /metrics on its status listener: the node's own families always; per route, the
    families the prometheus plugin's flags turn on (none without the plugin), from `requests`
    ((route, status) -> count)."""
    text = gauge("kong_nginx_connections_total", 3, 'node_id="n",subsystem="http",state="active"')
    text += gauge("kong_datastore_reachable", 1)
    config = (plugin or {}).get("config") or {}
    for (route, code), count in sorted(requests.items()):
        labels = f'service="{route}-service",route="{route}",workspace="default"'
        if config.get("status_code_metrics"):
            text += counter(
                "kong_http_requests_total", count, f'{labels},code="{code}",source="service",consumer=""'
            )
        if config.get("latency_metrics"):
            text += histogram("kong_request_latency_ms", KONG_UPSTREAM_MS, 20, count, labels)
            text += histogram("kong_upstream_latency_ms", KONG_UPSTREAM_MS, 20, count, labels)
            text += histogram("kong_kong_latency_ms", KONG_LATENCY_MS, 1, count, labels)
    return text


SEARCH = 'method="POST",endpoint="/collections/{collection_name}/points/search",status="200"'


def backup_exposition(prefix: str) -> str:
    """What a backup service's Metrics (components/platform/objectstore.py) serve after a good
    round; tests/monitoring/test_dashboards.py holds it to that class's own text. Written out,
    not imported: the stand-in images carry this file without the components package."""
    return (
        gauge(f"{prefix}_last_success_timestamp_seconds", 1.7642e9)
        + counter(f"{prefix}_failures_total", 0)
        + gauge(f"{prefix}_kept", 7)
    )


EXPOSITIONS: dict[str, str] = {
    "qdrant": qdrant_exposition(3, {"docs_index_mxbai": 1000}),
    "qdrant-lb": "".join(
        gauge(f"nginx_connections_{kind}", 1) for kind in ("active", "reading", "writing", "waiting")
    ),
    "kong": kong_exposition(
        {"config": {"status_code_metrics": True, "latency_metrics": True}}, {("rag-search", 200): 100}
    ),
    "neon-pageserver": (
        histogram(
            "pageserver_smgr_query_seconds_global",
            (0.0001, 0.001, 0.01, 0.1, 1),
            0.0005,
            50,
            'smgr_query_type="get_page_at_lsn"',
        )
        + gauge("pageserver_tenant_states_count", 1, 'state="Active"')
    ),
    "neon-safekeeper": (
        histogram("safekeeper_write_wal_bytes", (1024, 65536, 1048576), 8192, 30)
        + gauge("safekeeper_timelines", 1)
    ),
    "neon-storage-controller": (
        gauge("storage_controller_pending_reconciles", 0)
        + gauge("storage_controller_leadership_status", 1, 'status="leader"')
    ),
    "neon-storage-broker": gauge("storage_broker_active_publishers", 1),
    "neon-compute": gauge("compute_ctl_up", 1, 'build_tag="release-compute-9073",status="running"'),
    "minio": minio_exposition(True, 0, "minio-0:9000"),
    # The backup services' own exposition (components/platform/objectstore.py).
    "qdrant-backup": backup_exposition("qdrant_backup"),
    "storage-controller-backup": backup_exposition("neon_controller_backup"),
    "prometheus": gauge("prometheus_ready", 1),
    "alertmanager": gauge("alertmanager_cluster_enabled", 0),
    "grafana": gauge("grafana_build_info", 1, 'version="12.1.1"'),
}
"""By scrape job name (components/scrape_targets.py and the monitoring tier's own jobs)."""
