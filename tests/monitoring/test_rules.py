"""The alert rules in Debian's real promtool (3.5, the release line of the Prometheus image):
`check rules`, and `test rules` feeding synthetic series so that each alert fires when it
should and stays quiet when it should not (both sides of every threshold)."""

from __future__ import annotations

import re

import pytest
import yaml

from components.monitoring.rules import AlertTargets, alert_rules, render_alert_rules
from tests.support.prometheus import promtool

TARGETS = AlertTargets(
    qdrant_nodes=3, safekeepers=3, qdrant_backup_every_s=3600, controller_backup_every_s=3600
)
BACKUP = {"job": "qdrant-backup", "member": "qdrant-backup"}
CONTROLLER_BACKUP = {"job": "storage-controller-backup", "member": "storage-controller-backup"}


def annotations(alert: str, **values: str) -> dict[str, str]:
    """The rule's annotations with its template parts rendered as given (`route`, `value`, …)."""
    rule = next(r for r in alert_rules(TARGETS) if r["alert"] == alert)

    def render(text: str) -> str:
        return re.sub(r"\{\{ \$(?:labels\.)?(\w+)(?: \| \w+)? \}\}", lambda m: values[m[1]], text)

    return {key: render(text) for key, text in rule["annotations"].items()}


def fires(alert: str, at: str, labels: dict[str, str], **values: str) -> dict:
    rule = next(r for r in alert_rules(TARGETS) if r["alert"] == alert)
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [
            {"exp_labels": {**rule["labels"], **labels}, "exp_annotations": annotations(alert, **values)}
        ],
    }


def quiet(alert: str, at: str) -> dict:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def latency(endpoint: str, fast: int, slow: int) -> list[dict]:
    """Qdrant's REST latency histogram of `endpoint` (its buckets, in seconds:
    lib/segment/src/common/operation_time_statistics.rs), per minute: `fast` requests between
    1 and 5 ms and `slow` ones between 10 and 20 ms."""
    buckets = (
        ("0.001", 0),
        ("0.005", fast),
        ("0.01", fast),
        ("0.02", fast + slow),
        ("0.05", fast + slow),
        ("+Inf", fast + slow),
    )
    labels = f'endpoint="/collections/{{collection_name}}/points/{endpoint}",method="POST",status="200"'
    return [
        {"series": f'rest_responses_duration_seconds_bucket{{{labels},le="{le}"}}', "values": f"0+{count}x20"}
        for le, count in buckets
    ]


def requests_total(route: str, ok: int, errors: int) -> list[dict]:
    return [
        {"series": f'kong_http_requests_total{{route="{route}",code="200"}}', "values": f"0+{ok}x20"},
        {"series": f'kong_http_requests_total{{route="{route}",code="502"}}', "values": f"0+{errors}x20"},
    ]


def up(job: str, member: str, values: str) -> dict:
    return {"series": f'up{{job="{job}",member="{member}"}}', "values": values}


def gauge(name: str, member: str, values: str) -> dict:
    return {"series": f'{name}{{member="{member}"}}', "values": values}


def members(job: str, prefix: str, *values: str) -> list[dict]:
    return [up(job, f"{prefix}-{i}", v) for i, v in enumerate(values)]


def backup_series(name: str, values: str, labels: dict[str, str] = BACKUP) -> dict:
    pairs = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{pairs}}}", "values": values}


SEARCH = {"route": "rag-search"}
CASES = {
    # Both sides of the P95 threshold: 4 % slow searches keep P95 under 10 ms, 10 % do not.
    "p95 over 10 ms fires": (
        latency("search", 90, 10),
        [fires("SearchLatencyP95High", "10m", {}, value="15")],
    ),
    "p95 under 10 ms is quiet": (latency("search", 96, 4), [quiet("SearchLatencyP95High", "10m")]),
    "slow queries count as searches": (
        latency("query/batch", 90, 10),
        [fires("SearchLatencyP95High", "10m", {}, value="15")],
    ),
    "slow writes are not the search criterion": (
        latency("payload", 50, 50),
        [quiet("SearchLatencyP95High", "10m")],
    ),
    # Both sides of 0.1 %: 2 errors in 1000 fire, 1 in 2000 does not.
    "error rate over 0.1 % fires": (
        requests_total("rag-search", 998, 2),
        [fires("RouteErrorRateHigh", "10m", SEARCH, route="rag-search", value="0.2%")],
    ),
    "error rate under 0.1 % is quiet": (
        requests_total("rag-search", 1999, 1),
        [quiet("RouteErrorRateHigh", "10m")],
    ),
    "a majority of safekeepers down fires": (
        members("neon-safekeeper", "safekeeper", "1x10", "0x10", "0x10"),
        [fires("SafekeeperQuorumLost", "5m", {})],
    ),
    "one safekeeper down keeps the quorum but warns": (
        members("neon-safekeeper", "safekeeper", "1x10", "1x10", "0x10"),
        [
            quiet("SafekeeperQuorumLost", "5m"),
            fires(
                "SafekeeperDown",
                "5m",
                {"job": "neon-safekeeper", "member": "safekeeper-2"},
                member="safekeeper-2",
            ),
        ],
    ),
    "no safekeeper scraped at all is a lost quorum": (
        [up("neon-pageserver", "pageserver", "1x10")],
        [fires("SafekeeperQuorumLost", "5m", {})],
    ),
    "a Qdrant node down fires": (
        members("qdrant", "qdrant", "1x10", "1x10", "0x10"),
        [fires("QdrantPeerMissing", "5m", {})],
    ),
    "every Qdrant node up is quiet": (
        members("qdrant", "qdrant", "1x10", "1x10", "1x10")
        + [gauge("cluster_peers_total", f"qdrant-{i}", "3x10") for i in range(3)],
        [quiet("QdrantPeerMissing", "5m")],
    ),
    "a node that lost its peers fires though every node answers": (
        [
            *members("qdrant", "qdrant", "1x10", "1x10", "1x10"),
            gauge("cluster_peers_total", "qdrant-0", "2x10"),
        ],
        [fires("QdrantPeerMissing", "5m", {})],
    ),
    "dead replicas for 2 minutes fire": (
        [gauge("collection_dead_replicas", "qdrant-1", "0 0 2 2 2 2 2")],
        [quiet("QdrantReplicaNotActive", "3m"), fires("QdrantReplicaNotActive", "5m", {}, value="2")],
    ),
    "consensus pending for 5 minutes fires, a blip does not": (
        [gauge("cluster_pending_operations_total", "qdrant-0", "0 1 0 1 1 1 1 1 1 1 1")],
        [quiet("QdrantConsensusStuck", "4m"), fires("QdrantConsensusStuck", "9m", {})],
    ),
    "the pageserver down fires": (
        [up("neon-pageserver", "pageserver", "0x5")],
        [fires("PageserverDown", "3m", {"job": "neon-pageserver", "member": "pageserver"})],
    ),
    "the pageserver up is quiet": (
        [up("neon-pageserver", "pageserver", "1x5")],
        [quiet("PageserverDown", "3m")],
    ),
    "no controller answering fires": (
        [up("neon-storage-controller", "storage-controller", "0x5")],
        [fires("StorageControllerDown", "4m", {})],
    ),
    "object storage below its write quorum fires": (
        [up("minio", "minio-0", "1x10"), gauge("minio_cluster_health_status", "minio-0", "0x10")],
        [fires("ObjectStorageUnreachable", "5m", {})],
    ),
    "object storage healthy is quiet": (
        [up("minio", "minio-0", "1x10"), gauge("minio_cluster_health_status", "minio-0", "1x10")],
        [quiet("ObjectStorageUnreachable", "5m")],
    ),
    "a drive offline warns": (
        [gauge("minio_cluster_drive_offline_total", "minio-0", "2x10")],
        [fires("ObjectStorageDriveOffline", "8m", {}, value="2")],
    ),
    "a failed backup round warns": (
        [backup_series("qdrant_backup_failures_total", "0x5 1x10")],
        [fires("QdrantBackupFailing", "10m", BACKUP)],
    ),
    "rounds without a failure are quiet": (
        [backup_series("qdrant_backup_failures_total", "0x20")],
        [quiet("QdrantBackupFailing", "10m")],
    ),
    # Backups every hour: stale after two. The last one at t=1000 s is 6800 s old at 130 min
    # (quiet) and over 7200 s from 136.7 min on, for 10 minutes by 150 min (fires).
    "a backup older than two intervals fires": (
        [backup_series("qdrant_backup_last_success_timestamp_seconds", "1000x200")],
        [quiet("QdrantBackupStale", "130m"), fires("QdrantBackupStale", "150m", BACKUP)],
    ),
    "no backup yet is not stale (its failures say why)": (
        [backup_series("qdrant_backup_last_success_timestamp_seconds", "0x200")],
        [quiet("QdrantBackupStale", "150m")],
    ),
    # The controller's backups: the same two rules on the upload service's metrics.
    "a failed controller dump warns": (
        [backup_series("neon_controller_backup_failures_total", "0x5 1x10", CONTROLLER_BACKUP)],
        [fires("ControllerBackupFailing", "10m", CONTROLLER_BACKUP), quiet("QdrantBackupFailing", "10m")],
    ),
    "controller dumps without a failure are quiet": (
        [backup_series("neon_controller_backup_failures_total", "0x20", CONTROLLER_BACKUP)],
        [quiet("ControllerBackupFailing", "10m")],
    ),
    "a controller backup older than two intervals fires": (
        [
            backup_series(
                "neon_controller_backup_last_success_timestamp_seconds", "1000x200", CONTROLLER_BACKUP
            )
        ],
        [quiet("ControllerBackupStale", "130m"), fires("ControllerBackupStale", "150m", CONTROLLER_BACKUP)],
    ),
    "a flapping service fires, a single restart does not": (
        [up("kong", "kong-a", "1 0 1 0 1 0 1 1 1 1"), up("kong", "kong-b", "1 0 1 1 1 1 1 1 1 1")],
        [
            fires(
                "ServiceRestartLoop",
                "9m",
                {"job": "kong", "member": "kong-a"},
                job="kong",
                member="kong-a",
                value="6",
            )
        ],
    ),
}


def test_the_rules_pass_promtool_check(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(render_alert_rules(TARGETS))
    result = promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 16 rules found" in result.stdout


def test_a_broken_rule_fails_promtool_check(tmp_path):
    # Guards the test above: promtool really parses the expressions.
    rules = tmp_path / "rules.yml"
    rules.write_text(render_alert_rules(TARGETS).replace("histogram_quantile(", "histogram_quantile((", 1))
    assert promtool("check", "rules", str(rules)).returncode != 0


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_alert_fires_when_it_should_and_stays_quiet_when_it_should_not(tmp_path, case):
    series, expectations = CASES[case]
    (tmp_path / "rules.yml").write_text(render_alert_rules(TARGETS))
    spec = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": expectations}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    result = promtool("test", "rules", str(tmp_path / "test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_expectation_fails_promtool_test(tmp_path):
    # Guards the tests above: an alert that fires where none is expected fails promtool.
    (tmp_path / "rules.yml").write_text(render_alert_rules(TARGETS))
    series, _ = CASES["the pageserver down fires"]
    spec = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": series, "alert_rule_test": [quiet("PageserverDown", "3m")]}
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(spec))
    assert promtool("test", "rules", str(tmp_path / "test.yml")).returncode != 0


def test_without_quorums_the_quorum_rules_are_left_out():
    names = {r["alert"] for r in alert_rules(AlertTargets())}
    assert not names & {"SafekeeperQuorumLost", "QdrantPeerMissing", "QdrantReplicaNotActive"}
    assert {r["alert"] for r in alert_rules(AlertTargets(safekeepers=1))} >= {"SafekeeperQuorumLost"}
