"""Pure renderer of the alert rules: the plan's success criteria and the stack's HA invariants.

Metric names, read from the sources (see README "Monitoring"):
- Kong 3.9's prometheus plugin (kong/plugins/prometheus/exporter.lua): `kong_http_requests_total`
  (labels service, route, code, …; with `status_code_metrics`): the error rate per route. Not
  the search latency: Kong's request and upstream latency histograms start at a 25 ms bucket
  (UPSTREAM_LATENCY_BUCKETS), so they cannot tell a 9 ms P95 from a 20 ms one.
- Qdrant (src/common/metrics.rs), per node: `rest_responses_duration_seconds` (histogram,
  labels method, endpoint, status; timed for status 200; buckets of 1, 5, 10, 20, 50 ms …,
  lib/segment/src/common/operation_time_statistics.rs): the search latency. And
  `cluster_peers_total`, `cluster_pending_operations_total`, `collection_dead_replicas`.
- MinIO (cmd/metrics-v2.go): `minio_cluster_health_status`, `minio_cluster_drive_offline_total`.
- Every scrape job: Prometheus's own `up`.

Each rule's summary says what to look at first. A count over targets that may all be down is
written `(count(…) or vector(0))`: a count of nothing is no sample, not zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

SEARCH_BUCKETS = (
    "rest_responses_duration_seconds_bucket"
    '{endpoint=~"/collections/[^/]+/points/(search|query)(/batch|/groups)?"}'
)
"""Qdrant's latency histogram of the search and query endpoints (the endpoint label is the route
template, `/collections/{collection_name}/points/search`), every node."""


@dataclass(frozen=True)
class AlertTargets:
    """What the rules compare against (the stack's sizes and the plan's numbers)."""

    qdrant_nodes: int = 0
    safekeepers: int = 0
    qdrant_backup_every_s: int = 0
    """The Qdrant backups' interval (0: no backups deployed)."""
    controller_backup_every_s: int = 0
    """The storage controller database's backup interval (0: none deployed)."""
    p95_ms: float = 10.0
    max_error_rate: float = 0.001


def _rule(name: str, expr: str, duration: str, severity: str, summary: str, first: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "first": first},
    }


def alert_rules(targets: AlertTargets) -> list[dict]:
    """The rules, as Prometheus rule dicts."""
    p95 = f"{targets.p95_ms:g}"
    rules = [
        _rule(
            "SearchLatencyP95High",
            f"histogram_quantile(0.95, sum by (le) (rate({SEARCH_BUCKETS}[5m]))) * 1000 > {p95}",
            "5m",
            "warning",
            "Search P95 on the Qdrant nodes is {{ $value | humanize }} ms" + f" (plan: < {p95} ms)",
            "Open the Qdrant dashboard: a node missing or replicas not Active put the load on fewer "
            "nodes; then the nodes' CPU and memory, and the LB's active connections.",
        ),
        _rule(
            "RouteErrorRateHigh",
            'sum by (route) (rate(kong_http_requests_total{code=~"5.."}[5m])) '
            f"/ sum by (route) (rate(kong_http_requests_total[5m])) > {targets.max_error_rate:g}",
            "5m",
            "critical",
            f"{{{{ $labels.route }}}} answers 5xx to {{{{ $value | humanizePercentage }}}} of requests "
            f"(plan: < {targets.max_error_rate:.1%})",
            'Check the upstream service of the route, then the Qdrant LB (`up{job="qdrant-lb"}`) '
            "and the Neon compute.",
        ),
        _rule(
            "ServiceRestartLoop",
            "changes(up[15m]) > 4",
            "0m",
            "warning",
            "{{ $labels.job }} {{ $labels.member }} went up and down {{ $value }} times in 15 minutes",
            "`docker service ps --no-trunc rag-infra-<stack>-<member>` shows why its tasks exit.",
        ),
        _rule(
            "PageserverDown",
            'up{job="neon-pageserver"} == 0',
            "1m",
            "critical",
            "The Neon pageserver does not answer: reads of the database stop",
            "`docker service ps` of the pageserver; it is pinned to the first host with its volume.",
        ),
        _rule(
            "StorageControllerDown",
            '(count(up{job="neon-storage-controller"} == 1) or vector(0)) == 0',
            "2m",
            "critical",
            "The Neon storage controller does not answer: no attach, no new timeline",
            "Check its database (storage-controller-db) first: the controller exits without it.",
        ),
        _rule(
            "ObjectStorageUnreachable",
            '(count(up{job="minio"} == 1) or vector(0)) == 0 or min(minio_cluster_health_status) == 0',
            "2m",
            "critical",
            "Neon's object storage is unreachable or below its write quorum: uploads and WAL backups stop",
            "`curl 127.0.0.1:9000/minio/health/cluster` on the first host; then each node's service.",
        ),
        _rule(
            "ObjectStorageDriveOffline",
            "max(minio_cluster_drive_offline_total) > 0",
            "5m",
            "warning",
            "{{ $value }} MinIO drive(s) offline: one more node lost may stop writes",
            "Find the node whose service is not running; it comes back with its host.",
        ),
    ]
    if targets.safekeepers:
        majority = targets.safekeepers // 2 + 1
        rules += [
            _rule(
                "SafekeeperQuorumLost",
                f'(count(up{{job="neon-safekeeper"}} == 1) or vector(0)) < {majority}',
                "30s",
                "critical",
                f"Fewer than {majority} of {targets.safekeepers} safekeepers answer: commits stop",
                "Bring back the safekeepers' hosts first; `docker service ps` of each safekeeper.",
            ),
            _rule(
                "SafekeeperDown",
                'up{job="neon-safekeeper"} == 0',
                "1m",
                "warning",
                "Safekeeper {{ $labels.member }} does not answer: one more lost stops commits",
                "Its service is pinned to its host with its volume: look at that host.",
            ),
        ]
    if targets.qdrant_nodes:
        rules += [
            _rule(
                "QdrantPeerMissing",
                f'(count(up{{job="qdrant"}} == 1) or vector(0)) < {targets.qdrant_nodes} '
                f"or min(cluster_peers_total) < {targets.qdrant_nodes}",
                "1m",
                "critical",
                f"The Qdrant cluster has fewer than its {targets.qdrant_nodes} peers",
                "`curl -H api-key:… <qdrantUrl>/cluster` lists the peers; the missing node's service "
                "is pinned to its host.",
            ),
            _rule(
                "QdrantReplicaNotActive",
                "max(collection_dead_replicas) > 0",
                "2m",
                "critical",
                "{{ $value }} Qdrant replica(s) are Dead: the shards have fewer copies than asked for",
                "`GET /collections/<name>/cluster` shows which; a node back in the cluster heals them.",
            ),
            _rule(
                "QdrantConsensusStuck",
                "max(cluster_pending_operations_total) > 0",
                "5m",
                "critical",
                "Qdrant's consensus has had operations pending for 5 minutes",
                "A Raft majority is missing: check that at least 2 of 3 nodes are up and see each "
                "node's `/cluster` (`consensus_thread_status`).",
            ),
        ]
    if targets.qdrant_backup_every_s:
        rules += _backup_rules(
            "Qdrant",
            "qdrant_backup",
            targets.qdrant_backup_every_s,
            "qdrant-backup",
            "which node, collection or object",
            "python -m components.qdrant.restore --stack <stack> --list",
        )
    if targets.controller_backup_every_s:
        rules += _backup_rules(
            "Controller",
            "neon_controller_backup",
            targets.controller_backup_every_s,
            "storage-controller-dump",
            "what pg_dump said (the upload service's log, `storage-controller-backup`, says the rest)",
            "python -m components.neon.controller_restore --stack <stack> --list",
        )
    return rules


def _backup_rules(what: str, metric: str, every_s: int, service: str, says: str, listing: str) -> list[dict]:
    """A failed round within the hour (warning), and no complete backup for two intervals."""
    return [
        _rule(
            f"{what}BackupFailing",
            f"increase({metric}_failures_total[1h]) > 0",
            "0m",
            "warning",
            f"A {what} backup round failed in the last hour",
            f"`docker service logs rag-infra-<stack>-{service}` says {says}; the next round tries again.",
        ),
        _rule(
            f"{what}BackupStale",
            f"time() - {metric}_last_success_timestamp_seconds > {2 * every_s} "
            f"and {metric}_last_success_timestamp_seconds > 0",
            "10m",
            "critical",
            f"The last complete {what} backup is older than two backup intervals",
            f"Check {what}BackupFailing and the backup services' logs; `{listing}` shows the backups "
            "there are.",
        ),
    ]


def render_alert_rules(targets: AlertTargets) -> str:
    """rules.yml for Prometheus (`rule_files`)."""
    return yaml.safe_dump({"groups": [{"name": "rag-infra", "rules": alert_rules(targets)}]}, sort_keys=False)
