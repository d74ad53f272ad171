"""Plant realistic defects in the product code, one at a time, and count how many the tests catch.

    venv/bin/python -m bench.mutation_score [--only SUBSTRING]

Each mutant is a one-place change that a hurried edit could make (a bound off by one, a check
dropped, an order swapped, a wrong name). For each, the tests that cover its module run with
`-x`; a failure is a catch. The source is restored after every mutant, also on Ctrl-C. Prints
one line per mutant and the score; exits 0 whatever the score (a measurement, not a gate).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


SETTINGS_TESTS = ("tests/test_settings.py", "tests/kong/test_kong.py")
LB_TESTS = ("tests/qdrant/test_lb_nginx.py", "tests/qdrant/test_qdrant.py")
COLLECTION_TESTS = ("tests/qdrant/test_collection.py", "tests/qdrant/test_qdrant.py")
NEON_TESTS = ("tests/neon",)
KONG_TESTS = ("tests/kong", "tests/policies")
PG_TESTS = ("tests/migration/test_postgres_migration.py",)
QM_TESTS = ("tests/migration/test_qdrant_migration.py",)
POLICY_TESTS = ("tests/policies",)
PROGRAM_TESTS = ("tests/test_program.py", "tests/neon/test_neon.py", "tests/qdrant/test_qdrant.py",
                 "tests/migration")  # fmt: skip

SWARM_TESTS = ("tests/platform/test_swarm.py",)
MONITORING_TESTS = ("tests/monitoring",)
BACKUP_TESTS = ("tests/qdrant/test_snapshots.py", "tests/qdrant/test_backups.py")
CONTROLLER_BACKUP_TESTS = ("tests/neon/test_controller_backups.py",)
OBJECT_STORAGE_TESTS = ("tests/neon/test_object_storage.py", "tests/neon/test_neon.py")
TLS_TESTS = ("tests/platform/test_tls.py", "tests/neon/test_pooler.py", "tests/qdrant/test_lb_nginx.py")
JOB_TESTS = ("tests/platform/test_jobs.py",)

MUTANTS = [
    # one-shot jobs
    Mutant(
        "a job that keeps failing passes",
        "components/platform/jobs.py",
        """    echo "{name}: failed {attempts} times" >&2
    exit 1""",
        """    echo "{name}: failed {attempts} times" >&2
    exit 0""",
        JOB_TESTS,
    ),
    # the swarm bootstrap
    Mutant(
        "a worker taken for the manager",
        "components/platform/swarm.py",
        """  "active true") ;;""",
        """  "active "*) ;;""",
        SWARM_TESTS,
    ),
    Mutant(
        "node labels off by one",
        "components/platform/swarm.py",
        "index=0\n",
        "index=1\n",
        SWARM_TESTS,
    ),
    # settings
    Mutant(
        "qdrant nodes may be even",
        "components/qdrant/settings.py",
        "nodes: whole(1, odd=True) = 3",
        "nodes: whole(1) = 3",
        SETTINGS_TESTS,
    ),
    Mutant(
        "replication factor == nodes refused",
        "components/qdrant/settings.py",
        "if collection.replication_factor > self.nodes:",
        "if collection.replication_factor >= self.nodes:",
        SETTINGS_TESTS,
    ),
    Mutant(
        "write consistency == replication refused",
        "components/qdrant/settings.py",
        "if self.write_consistency_factor > self.replication_factor:",
        "if self.write_consistency_factor >= self.replication_factor:",
        SETTINGS_TESTS,
    ),
    Mutant(
        "32 safekeepers accepted",
        "components/neon/settings.py",
        "safekeepers: whole(1, 31) = 1",
        "safekeepers: whole(1, 32) = 1",
        SETTINGS_TESTS,
    ),
    Mutant(
        "prod quorum default overrides the stack file",
        "components/neon/settings.py",
        'return {"safekeepers": 3, **data}',
        'return {**data, "safekeepers": 3}',
        SETTINGS_TESTS,
    ),
    Mutant(
        "rate limit equal periods refused",
        "components/kong/settings.py",
        "if large_limit < small_limit:",
        "if large_limit <= small_limit:",
        SETTINGS_TESTS,
    ),
    Mutant(
        "prod CORS defaults to *",
        "components/kong/settings.py",
        'return {**data, "origins": [] if is_prod(info) else ["*"]}',
        'return {**data, "origins": ["*"]}',
        SETTINGS_TESTS,
    ),
    Mutant(
        "booleans count as numbers",
        "components/platform/settings.py",
        "valid = isinstance(value, int) and not isinstance(value, bool)",
        "valid = isinstance(value, int)",
        SETTINGS_TESTS,
    ),
    Mutant(
        "latest tag accepted",
        "components/platform/settings.py",
        'or match["tag"] == "latest":',
        "or False:",
        SETTINGS_TESTS,
    ),
    Mutant(
        "postgres migration without the Neon tier",
        "components/settings.py",
        "            if not self.features.neon:",
        "            if False:",
        SETTINGS_TESTS,
    ),
    # the LB config
    Mutant(
        "no Connection header reset (keepalive off)",
        "components/qdrant/lb_config.py",
        """'            proxy_set_header Connection "";',""",
        "",
        LB_TESTS,
    ),
    Mutant(
        "every POST retried",
        "components/qdrant/lb_config.py",
        'http_504" + (" non_idempotent" if retry_posts else "")',
        'http_504 non_idempotent"',
        LB_TESTS,
    ),
    Mutant(
        "no POST retried",
        "components/qdrant/lb_config.py",
        'http_504" + (" non_idempotent" if retry_posts else "")',
        'http_504"',
        LB_TESTS,
    ),
    Mutant(
        "no re-resolution of node names",
        "components/qdrant/lb_config.py",
        'server_params += " resolve"',
        'server_params += ""',
        LB_TESTS,
    ),
    Mutant(
        "503 not retried",
        "components/qdrant/lb_config.py",
        'retry_on = "error timeout http_502 http_503 http_504"',
        'retry_on = "error timeout http_502 http_504"',
        LB_TESTS,
    ),
    # the collection provider
    Mutant(
        "Partial counted as healthy",
        "components/qdrant/collection.py",
        'HEALTHY_STATES = {"Active"}',
        'HEALTHY_STATES = {"Active", "Partial"}',
        COLLECTION_TESTS,
    ),
    Mutant(
        "create before all peers joined",
        "components/qdrant/collection.py",
        "if len(peers) >= expected_peers and",
        "if len(peers) >= 1 and",
        COLLECTION_TESTS,
    ),
    Mutant(
        "a shard with no replica passes",
        "components/qdrant/collection.py",
        "missing = [s for s in range(shard_number) if s not in placement]",
        "missing = []",
        COLLECTION_TESTS,
    ),
    Mutant(
        "adopt a collection with another distance",
        "components/qdrant/collection.py",
        'for key in ("vector_size", "distance", "shard_number")',
        'for key in ("vector_size", "shard_number")',
        COLLECTION_TESTS,
    ),
    Mutant(
        "shard_number changes in place",
        "components/qdrant/collection.py",
        'IMMUTABLE = ("name", "vector_size", "distance", "shard_number")',
        'IMMUTABLE = ("name", "vector_size", "distance")',
        COLLECTION_TESTS,
    ),
    Mutant(
        "points deleted without the opt-in",
        "components/qdrant/collection.py",
        'if points and not props.get("delete_with_points"):',
        "if False:",
        COLLECTION_TESTS,
    ),
    # the Neon config and providers
    Mutant(
        "compute names one safekeeper too few",
        "components/neon/config.py",
        "for i in range(count)]",
        "for i in range(count - 1)]",
        NEON_TESTS + POLICY_TESTS,
    ),
    Mutant(
        "compute reaches the pageserver's http port",
        "components/neon/config.py",
        'pageserver = f"host={PAGESERVER_ALIAS} port={spec.pageserver_pg_port}"',
        'pageserver = f"host={PAGESERVER_ALIAS} port={PAGESERVER_HTTP_PORT}"',
        NEON_TESTS,
    ),
    Mutant(
        "pageserver registers under another name",
        "components/neon/config.py",
        '"host": PAGESERVER_ALIAS,',
        '"host": "pageserver-0",',
        NEON_TESTS,
    ),
    Mutant(
        "PITR past accepted",
        "components/neon/timeline.py",
        'if kind == "present":',
        'if kind in ("present", "past"):',
        NEON_TESTS,
    ),
    Mutant(
        "main may be replaced",
        "components/neon/timeline.py",
        "    changed = [k for k in MAIN_IDENTITY if olds.get(k) != news.get(k)]",
        "    changed = []",
        NEON_TESTS,
    ),
    Mutant(
        "safekeepers keep deleted timelines",
        "components/neon/timeline.py",
        'for url in props.get("safekeeper_urls") or []:',
        "for url in []:",
        NEON_TESTS,
    ),
    # the Kong config
    Mutant(
        "jwt key claim is sub",
        "components/kong/config.py",
        '"key_claim_name": "iss",',
        '"key_claim_name": "sub",',
        KONG_TESTS,
    ),
    Mutant(
        "exp not verified",
        "components/kong/config.py",
        '"claims_to_verify": ["exp"],',
        '"claims_to_verify": [],',
        KONG_TESTS,
    ),
    Mutant("paths match as prefixes", "components/kong/config.py", '+ "(/|$)"', '+ ""', KONG_TESTS),
    # the Postgres migration
    Mutant(
        "checksum ignores binary-hashed columns",
        "migration/postgres/engine.py",
        "if send else ident)",
        "if False else ident)",
        PG_TESTS,
    ),
    Mutant(
        "checkpoint committed apart from its data",
        "migration/postgres/engine.py",
        "            copied = tcur.rowcount\n            tcur.execute(",
        "            copied = tcur.rowcount\n        with tgt.transaction(), tgt.cursor() as tcur:\n"
        "            tcur.execute(",
        PG_TESTS,
    ),
    Mutant(
        "foreign rows in a started table ignored",
        "migration/postgres/engine.py",
        "if target_rows != rows_copied:",
        "if False:",
        PG_TESTS,
    ),
    # the Qdrant migration
    Mutant(
        "sample payloads not compared",
        "migration/qdrant/engine.py",
        "elif src_points[point_id].payload != tgt_points[point_id].payload:",
        "elif False:",
        QM_TESTS,
    ),
    Mutant(
        "recall compares the source with itself",
        "migration/qdrant/engine.py",
        "lambda v=vector, u=using: target.query_points(\n                    target_collection,",
        "lambda v=vector, u=using: source.query_points(\n                    source_collection,",
        QM_TESTS,
    ),
    Mutant(
        "vectors never differ",
        "migration/qdrant/engine.py",
        "return bool(np.allclose(left, right, rtol=0, atol=1e-6))",
        "return True",
        QM_TESTS,
    ),
    # the policies
    Mutant(
        "even quorums pass",
        "policies/common.py",
        "return members < minimum or members % 2 == 0",
        "return members < minimum",
        POLICY_TESTS,
    ),
    Mutant(
        "Kong status listener may be public",
        "policies/kong_rules.py",
        '    8100: "status listener",\n',
        "",
        POLICY_TESTS,
    ),
    Mutant(
        "memory limits not required",
        "policies/container_rules.py",
        "if not memory_limited(args.props):",
        "if False:",
        POLICY_TESTS,
    ),
    Mutant(
        "latest images pass",
        "policies/common.py",
        'return bool(tag) and tag != "latest"',
        "return bool(tag)",
        POLICY_TESTS,
    ),
    Mutant(
        "quorum on fewer hosts passes",
        "policies/stack_rules.py",
        "elif len(hosts) < min(minimum, len(members)):",
        "elif len(hosts) < 1:",
        POLICY_TESTS,
    ),
    Mutant(
        "a quorum member Swarm may place anywhere passes",
        "policies/stack_rules.py",
        "if None in hosts:",
        "if False:",
        POLICY_TESTS,
    ),
    Mutant(
        "the API key may come from a Swarm config",
        "policies/qdrant_rules.py",
        "elif path in config_files:",
        "elif False:",
        POLICY_TESTS,
    ),
    Mutant(
        "a service that pauses on a failed rollout passes",
        "policies/service_rules.py",
        'if update.get("failureAction") != "rollback":',
        "if False:",
        POLICY_TESTS,
    ),
    Mutant(
        "a service with a volume may start its new task first",
        "policies/service_rules.py",
        'if order != "stop-first":',
        "if False:",
        POLICY_TESTS,
    ),
    # the Swarm services
    Mutant(
        "configs and secrets before the swarm",
        "components/platform/service.py",
        "provider=args.provider, depends_on=list(args.depends_on))",
        "provider=args.provider)",
        PROGRAM_TESTS,
    ),
    Mutant(
        "a stateful member starts its new task beside the old one",
        "components/platform/service.py",
        'order="stop-first" if one_at_a_time else "start-first",',
        'order="stop-first" if stateful else "start-first",',
        PROGRAM_TESTS,
    ),
    Mutant(
        "a single writer without a volume starts its new task beside the old one",
        "components/platform/service.py",
        "one_at_a_time = stateful or spec.exclusive",
        "one_at_a_time = stateful",
        PROGRAM_TESTS,
    ),
    Mutant(
        "a failed rollout is left in place",
        "components/platform/service.py",
        'failure_action="rollback",',
        'failure_action="pause",',
        PROGRAM_TESTS,
    ),
    Mutant(
        "Qdrant nodes all roll out at once",
        "components/qdrant/cluster.py",
        "depends_on=gates[-1:],",
        "depends_on=[],",
        PROGRAM_TESTS,
    ),
    Mutant(
        "the gate waits on the other peers' replicas too",
        "components/qdrant/member_gate.py",
        "mine = {shard: {peer: states[peer]} for shard, states in placement.items() if peer in states}",
        "mine = placement",
        ("tests/qdrant/test_member_gate.py",),
    ),
    Mutant(
        "the gate passes a node that has not joined",
        "components/qdrant/member_gate.py",
        "if peer is None:",
        "if False:",
        ("tests/qdrant/test_member_gate.py",),
    ),
    Mutant(
        "the drill starts a stopped service task again",
        "verify/failover.py",
        "        yield time.monotonic()\n        return\n",
        "        yield time.monotonic()\n        tasks[0].start()\n        return\n",
        ("tests/verify/test_failover.py",),
    ),
    Mutant(
        "Kong's admin API published by the service",
        "components/kong/gateway.py",
        "ports={PROXY_TLS_PORT if tls else PROXY_PORT: settings.proxy_port},",
        "ports={PROXY_TLS_PORT if tls else PROXY_PORT: settings.proxy_port, "
        "ADMIN_PORT: settings.admin_port},",
        (*PROGRAM_TESTS, "tests/kong"),
    ),
    Mutant(
        "the forwarder resolves its targets once, at start",
        "components/platform/operator_access.py",
        '            f"        set $target {forward.target}:{forward.target_port};",\n'
        '            "        proxy_pass $target;",',
        '            f"        proxy_pass {forward.target}:{forward.target_port};",',
        ("tests/platform/test_operator_access.py",),
    ),
    # the program
    Mutant(
        "qdrant migration before its collection",
        "__main__.py",
        "pulumi.ResourceOptions(depends_on=[qdrant.collection(collection.name)]),",
        "None,",
        PROGRAM_TESTS,
    ),
    Mutant(
        "postgres migration before the schema",
        "__main__.py",
        "pulumi.ResourceOptions(depends_on=[neon.schema]),",
        "None,",
        PROGRAM_TESTS,
    ),
    Mutant(
        "appEnv hands out the host URL",
        "__main__.py",
        "kong_gateway_url=kong.internal_url if kong else None,",
        "kong_gateway_url=kong.proxy_url if kong else None,",
        PROGRAM_TESTS,
    ),
    Mutant(
        "prod volumes deleted with the stack",
        "__main__.py",
        "retain_volumes=settings.is_prod,",
        "retain_volumes=False,",
        PROGRAM_TESTS,
    ),
    # the safekeeper rollout gate
    Mutant(
        "a member one record behind its peers counts as caught up",
        "components/neon/safekeeper_gate.py",
        "if flushed < needed:",
        "if flushed < needed - 1:",
        NEON_TESTS,
    ),
    Mutant(
        "a member missing a timeline its peers hold counts as back",
        "components/neon/safekeeper_gate.py",
        """        if mine_status == 404:
            behind.append(f"timeline {timeline} missing (its peers hold it)")
            continue""",
        """        if mine_status == 404:
            continue""",
        NEON_TESTS,
    ),
    Mutant(
        "the member's own flush LSN compared with its own commit LSN",
        "components/neon/safekeeper_gate.py",
        "            if peer == index:\n                continue",
        "            if False:\n                continue",
        NEON_TESTS,
    ),
    Mutant(
        "the next safekeeper rolled while another one is down",
        "components/neon/safekeeper_gate.py",
        "        if answer != 200:",
        "        if answer not in (200, 'ConnectionError'):",
        NEON_TESTS,
    ),
    Mutant(
        "a rollout gate that never checks the catch-up",
        "components/neon/safekeeper_gate.py",
        "return UpdateResult(outs=self._wait(news, catch_up=True))",
        "return UpdateResult(outs=self._wait(news, catch_up=False))",
        NEON_TESTS,
    ),
    Mutant(
        "safekeepers rolled out together (no chain through the gates)",
        "components/neon/storage.py",
        "depends_on=[broker, bucket, *self.safekeeper_gates[-1:]],",
        "depends_on=[broker, bucket],",
        NEON_TESTS,
    ),
    Mutant(
        "the controller started without its database URL",
        "components/neon/storage.py",
        'DATABASE_URL="$(cat {CONTROLLER_DB_URL_FILE})" || exit 1; export DATABASE_URL; ',
        'DATABASE_URL="$(cat {CONTROLLER_DB_URL_FILE})" || exit 1; ',
        NEON_TESTS,
    ),
    Mutant(
        "the S3 secret key pair in the environment file variable points nowhere",
        "components/neon/storage.py",
        's3_env = {"AWS_SHARED_CREDENTIALS_FILE": S3_CREDENTIALS_FILE}',
        's3_env = {"AWS_SHARED_CREDENTIALS_FILE": "/root/.aws/credentials"}',
        NEON_TESTS,
    ),
    Mutant(
        "the tenant created before the operator ports are forwarded",
        "components/neon/database.py",
        """                    *self.storage.safekeeper_gates,
                    *args.operator_access,""",
        """                    *self.storage.safekeeper_gates,""",
        NEON_TESTS,
    ),
    # object storage (MinIO nodes)
    Mutant(
        "write quorum: data drives only, also when data equals parity",
        "components/neon/object_storage.py",
        "return data + 1 if data == parity else data",
        "return data",
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "parity: 6-7 drives get 2 instead of MinIO's 3",
        "components/neon/object_storage.py",
        """    if drives <= 7:
        return 3""",
        """    if drives <= 7:
        return 2""",
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "the store's endpoints name one drive too many",
        "components/neon/object_storage.py",
        'f"/data{{0...{settings.drives_per_node - 1}}}"',
        'f"/data{{0...{settings.drives_per_node}}}"',
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "the nodes lose the shared name clients use",
        "components/neon/object_storage.py",
        "extra_aliases=[MINIO_ALIAS] if distributed else [],",
        "extra_aliases=[],",
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "a changed store layout goes through",
        "components/neon/store_layout.py",
        'changed = olds.get("layout") != news.get("layout")',
        "changed = False",
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "the MinIO gate moves on with another node offline",
        "components/neon/minio_gate.py",
        'if status != 200 or server == "offline":',
        "if status != 200:",
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "the MinIO gate takes liveness for a write quorum after a rollout",
        "components/neon/minio_gate.py",
        'status, server = health(urls[index], "/minio/health/cluster")',
        'status, server = health(urls[index], "/minio/health/live")',
        OBJECT_STORAGE_TESTS,
    ),
    Mutant(
        "the store rule counts a host's loss as one drive",
        "components/neon/object_storage.py",
        "return all(total - lost >= write_quorum(total) for lost in drives_by_host.values())",
        "return all(total - 1 >= write_quorum(total) for lost in drives_by_host.values())",
        (*POLICY_TESTS, *OBJECT_STORAGE_TESTS),
    ),
    Mutant(
        "the store drill passes with probes refused",
        "verify/failover.py",
        "bool(answers) and not refused and back_after is not None",
        "bool(answers) and back_after is not None",
        ("tests/verify/test_failover.py",),
    ),
    # monitoring: alert rules and scrape config
    Mutant(
        "the safekeeper majority off by one",
        "components/monitoring/rules.py",
        "majority = targets.safekeepers // 2 + 1",
        "majority = targets.safekeepers // 2",
        MONITORING_TESTS,
    ),
    Mutant(
        "a quorum count of no target at all is no sample",
        "components/monitoring/rules.py",
        """f'(count(up{{job="neon-safekeeper"}} == 1) or vector(0)) < {majority}'""",
        """f'count(up{{job="neon-safekeeper"}} == 1) < {majority}'""",
        MONITORING_TESTS,
    ),
    Mutant(
        "the error rate compared with 1 % instead of the plan's 0.1 %",
        "components/monitoring/rules.py",
        "max_error_rate: float = 0.001",
        "max_error_rate: float = 0.01",
        MONITORING_TESTS,
    ),
    Mutant(
        "the bearer token file dropped from a scrape job",
        "components/monitoring/scrape.py",
        'config["authorization"] = {"type": "Bearer", "credentials_file": job.bearer_file}',
        "pass",
        MONITORING_TESTS,
    ),
    Mutant(
        "the search P95 read from Kong's histogram, whose first bucket is 25 ms",
        "components/monitoring/rules.py",
        '"rest_responses_duration_seconds_bucket"\n    \'{endpoint=~"/collections/[^/]+/points/',
        '"kong_request_latency_ms_bucket"\n    \'{route="rag-search",endpoint=~"/collections/[^/]+/points/',
        MONITORING_TESTS,
    ),
    Mutant(
        "the safekeepers scraped on their loopback forward's port (+ i) instead of their own",
        "components/neon/database.py",
        "[(safekeeper_alias(i), settings.safekeeper_http_port) for i in range(settings.safekeepers)],",
        "[(safekeeper_alias(i), settings.safekeeper_http_port + i) for i in range(settings.safekeepers)],",
        MONITORING_TESTS,
    ),
    Mutant(
        "the Qdrant nodes scraped without the API key",
        "components/qdrant/cluster.py",
        "            bearer_file=api_key_file,\n",
        "",
        MONITORING_TESTS,
    ),
    Mutant(
        "Kong's plugin without its latency histograms",
        "components/kong/config.py",
        '"latency_metrics": True,',
        '"latency_metrics": False,',
        ("tests/kong/test_kong.py",),
    ),
    Mutant(
        "MinIO's metrics left behind its token",
        "components/neon/object_storage.py",
        '"MINIO_PROMETHEUS_AUTH_TYPE": "public",',
        "",
        ("tests/neon/test_neon.py",),
    ),
    Mutant(
        "the LB's metrics listener answers everything else too",
        "components/qdrant/lb_config.py",
        '            "        location / {",\n            "            return 404;",\n',
        '            "        location / {",\n',
        ("tests/qdrant/test_lb_nginx.py",),
    ),
    Mutant(
        "the webhook URL written into alertmanager.yml",
        "components/monitoring/config.py",
        '"webhook_configs": [{"url_file": webhook_url_file, "send_resolved": True}],',
        '"webhook_configs": [{"url": "https://hooks.example.com/" + webhook_url_file}],',
        MONITORING_TESTS,
    ),
    Mutant(
        "Grafana's password file named without __FILE",
        "components/monitoring/monitoring.py",
        '"GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_PASSWORD_FILE,',
        '"GF_SECURITY_ADMIN_PASSWORD_FILE": GRAFANA_PASSWORD_FILE,',
        MONITORING_TESTS,
    ),
    Mutant(
        "the scrape rule counts DNS-discovered services as not scraped",
        "policies/monitoring_rules.py",
        '            names |= set(discovery.get("names") or [])',
        "            pass",
        POLICY_TESTS,
    ),
    Mutant(
        "the scrape rule lets a stack without Prometheus pass",
        "policies/monitoring_rules.py",
        "    if not prometheus:\n        report(",
        "    if not prometheus:\n        return\n        report(",
        POLICY_TESTS,
    ),
    # Qdrant backups and restore
    Mutant(
        "the restore lets the other replicas win over the snapshot",
        "components/qdrant/snapshots.py",
        '"priority": "snapshot", "checksum": entry["sha256"]',
        '"priority": "replica", "checksum": entry["sha256"]',
        BACKUP_TESTS,
    ),
    Mutant(
        "the restore trusts the recovery without counting the points",
        "components/qdrant/snapshots.py",
        "    if counted != expected:",
        "    if False:",
        BACKUP_TESTS,
    ),
    Mutant(
        "the snapshot sent to the node without its checksum",
        "components/qdrant/snapshots.py",
        '"priority": "snapshot", "checksum": entry["sha256"]',
        '"priority": "snapshot"',
        BACKUP_TESTS,
    ),
    Mutant(
        "retention keeps one backup too many",
        "components/platform/objectstore.py",
        "for old in backup_times(s3, prefix)[:-keep]:",
        "for old in backup_times(s3, prefix)[: -keep - 1]:",
        BACKUP_TESTS,
    ),
    Mutant(
        "the object listing stops at its first page",
        "components/platform/objectstore.py",
        'if root.findtext(f"{space}IsTruncated") != "true" or token_node is None:',
        "if True:",
        BACKUP_TESTS,
    ),
    Mutant(
        "a manifest of another cluster size is applied",
        "components/qdrant/snapshots.py",
        'if manifest["nodes"] != len(qdrant.nodes) or len(entries) != len(qdrant.nodes):',
        "if False:",
        BACKUP_TESTS,
    ),
    # The storage controller's database: backups, restore, re-import
    Mutant(
        "the database restore runs statement by statement",
        "components/neon/controller_backups.py",
        "--set=ON_ERROR_STOP=1 --single-transaction",
        "--set=ON_ERROR_STOP=1",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "the password file is readable by all (libpq ignores it)",
        "components/neon/controller_backups.py",
        "secret=True, mode=0o400)",
        "secret=True, mode=0o444)",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "a dump counts before pg_restore has read it",
        "components/neon/controller_backups.py",
        ' && pg_restore --list "$part" >/dev/null 2>>"$said"',
        "",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "the controller stays stopped when the database restore fails",
        "components/neon/controller_restore.py",
        '        finally:\n            step("4/5',
        '        except RestoreError:\n            raise\n        else:\n            step("4/5',
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "a fetched backup is not checked against its manifest",
        "components/neon/controller_backup.py",
        'if len(data) != manifest["bytes"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:',
        "if False:",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "tenants are imported without being dropped (their stale generation kept)",
        "components/neon/controller_backup.py",
        '        controller.ok("POST", f"/debug/v1/tenant/{tenant}/drop")\n',
        "",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "an imported tenant keeps the default config",
        "components/neon/controller_backup.py",
        "        if config is not None:\n            controller.ok(",
        "        if False:\n            controller.ok(",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "a second reattach forgets the configs the first one kept",
        "components/neon/controller_backup.py",
        "json.loads(saved.read_text()) if saved.exists() else {}",
        "{}",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "sharded tenant folders are not found",
        "components/neon/controller_backup.py",
        'SHARD_FOLDER = re.compile(r"([0-9a-f]{32})(?:-[0-9a-f]{4})?/")',
        'SHARD_FOLDER = re.compile(r"([0-9a-f]{32})/")',
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "the import gives up at once while no pageserver is available",
        "components/neon/controller_backup.py",
        'waiting = status == 503 or (status == 400 and "No nodes available" in str(message))',
        "waiting = False",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "the upload leaves a dump's failure unreported",
        "components/neon/controller_backup.py",
        "        failures.append(f\"dump {marker.stem} failed: {said[-500:] or 'no message'}\")\n",
        "",
        CONTROLLER_BACKUP_TESTS,
    ),
    Mutant(
        "a controller backup is stale only after three intervals",
        "components/monitoring/rules.py",
        'f"time() - {metric}_last_success_timestamp_seconds > {2 * every_s} "',
        'f"time() - {metric}_last_success_timestamp_seconds > {3 * every_s} "',
        MONITORING_TESTS,
    ),
    # TLS on the public listeners
    Mutant(
        "the LB publishes its plaintext ports though TLS is on",
        "components/qdrant/cluster.py",
        "if tls\n            else {REST_PORT: settings.lb_port, GRPC_PORT: settings.lb_grpc_port}",
        "if not tls\n            else {REST_PORT: settings.lb_port, GRPC_PORT: settings.lb_grpc_port}",
        TLS_TESTS,
    ),
    Mutant(
        "the pooler lets plaintext clients in though TLS is on",
        "components/neon/config.py",
        '"client_tls_sslmode": "require",',
        '"client_tls_sslmode": "allow",',
        TLS_TESTS,
    ),
    Mutant(
        "Kong's TLS listener without its ssl flag",
        "components/kong/gateway.py",
        '(f", 0.0.0.0:{PROXY_TLS_PORT} ssl" if tls else "")',
        '(f", 0.0.0.0:{PROXY_TLS_PORT}" if tls else "")',
        TLS_TESTS,
    ),
    Mutant(
        "the program's clients trust the system's CAs only",
        "components/qdrant/collection.py",
        "self.verify = ca_bundle_file(self.ca_certificate)",
        "self.verify = True",
        (*TLS_TESTS, "tests/qdrant/test_collection.py"),
    ),
    Mutant(
        "the TLS rule reads nginx's plaintext listeners as TLS",
        "policies/tls_rules.py",
        'tls = _nginx_tls_ports(file_text(args.resources, workload, NGINX_CONF) or "")',
        "tls = set(ports)",
        POLICY_TESTS,
    ),
]


E2E_TESTS = ("e2e/test_dev.py",)
E2E_MUTANTS = [
    # What only the real engine can tell (issue: the e2e tests fail if a health check, alias,
    # published port, mount path or start order is wrong). Run with a started engine:
    # RAG_E2E_DOCKER_DIR=... venv/bin/python -m bench.mutation_score --e2e
    Mutant(
        "health check: curl, which the Qdrant image does not ship",
        "components/qdrant/cluster.py",
        'bash_http_probe(REST_PORT, "/readyz"),',
        '["CMD", "curl", "-fsS", f"http://127.0.0.1:{REST_PORT}/readyz"],',
        E2E_TESTS,
    ),
    Mutant(
        "alias: nodes join the network under another name than the configs use",
        "components/qdrant/cluster.py",
        "alias=node_alias(index),",
        'alias=f"qdrant-node-{index}",',
        E2E_TESTS,
    ),
    Mutant(
        "published port: the operator ports on every interface",
        "components/platform/operator_access.py",
        "docker.ContainerPortArgs(internal=f.port, external=f.port, ip=LOOPBACK)",
        "docker.ContainerPortArgs(internal=f.port, external=f.port)",
        E2E_TESTS,
    ),
    Mutant(
        "mount path: the database volume where another distribution keeps PGDATA",
        "components/platform/postgres.py",
        "mounts=[Mount(args.volume_name, DATA_PATH)],",
        'mounts=[Mount(args.volume_name, "/var/lib/pgsql/data")],',
        E2E_TESTS,
    ),
    Mutant(
        "start order: the migration no longer waits for the RAG schema",
        "__main__.py",
        "pulumi.ResourceOptions(depends_on=[neon.schema]),",
        "pulumi.ResourceOptions(),",
        E2E_TESTS,
    ),
]


def run(mutant: Mutant) -> tuple[str, float]:
    path = ROOT / mutant.path
    original = path.read_text()
    if original.count(mutant.old) != 1:
        return "stale (the code it mutates changed)", 0.0
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutant.old, mutant.new))
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        path.write_text(original)
    if result.returncode == 0:
        return "SURVIVED", time.monotonic() - started
    failed = [line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return f"caught ({failed[0].split(' - ')[0] if failed else 'collection'})", time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run the mutants whose name contains this")
    parser.add_argument("--e2e", action="store_true", help="the end-to-end mutants (needs dockerd)")
    args = parser.parse_args()
    pool = E2E_MUTANTS if args.e2e else MUTANTS
    chosen = [m for m in pool if not args.only or args.only in m.name]
    caught = valid = 0
    for mutant in chosen:
        verdict, seconds = run(mutant)
        print(f"{verdict:>8}  {seconds:6.1f}s  {mutant.path}: {mutant.name}", flush=True)
        if not verdict.startswith("stale"):
            valid += 1
            caught += verdict.startswith("caught")
    print(f"mutation score: {caught}/{valid} caught ({100.0 * caught / max(valid, 1):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
