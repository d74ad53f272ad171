"""python -m verify --stack NAME [--outputs FILE] [--json]

Checks a deployed stack from its outputs (`pulumi stack output --json --show-secrets`, or a file
holding them) and its stack file: Neon (extensions, tables, schema version, query latency),
Qdrant (cluster, collections, replicas, search), Kong (tokens, upstreams, rate limits, CORS), an
end-to-end smoke test and, with --load, the plan's load criteria (`verify.load`); with
--failover, the failover drill (refused on a prod stack without --force).
Exit 0 when every check passes, 1 when one fails (each failure named), 2 when the outputs or
the stack file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from components.kong.token import issue_token
from components.platform.settings import SettingsError
from components.platform.tls import ca_bundle_file
from components.settings import StackSettings
from policies.program import stack_settings
from verify.failover import (
    compute_failover,
    member,
    object_storage_failover,
    qdrant_failover,
    running_task,
    safekeeper_failover,
)
from verify.gate import ENV
from verify.kong import check_admin_not_exposed, check_kong
from verify.load import generator_ceiling, judge, run_load
from verify.neon import check_branches, check_neon, check_neon_storage
from verify.qdrant import check_qdrant, grpc_search
from verify.report import Check, Report
from verify.smoke import smoke_neon, smoke_qdrant

JSON_OUTPUTS = ("neonStatusUrls", "neonTimelineIds", "neonBranchUrls")
"""Outputs that are maps: the gate passes them as JSON text."""


def read_outputs(stack: str, path: str | None, from_env: bool = False) -> dict[str, Any]:
    if from_env:
        # The gate inside `pulumi up` passes the outputs as (secret) environment, maps as JSON.
        values = {key: os.environ[variable] for key, variable in ENV.items() if os.environ.get(variable)}
        return {key: json.loads(v) if key in JSON_OUTPUTS else v for key, v in values.items()}
    if path:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    except FileNotFoundError:
        raise ValueError("the Pulumi CLI is not on PATH; pass --outputs FILE instead") from None
    except subprocess.CalledProcessError as err:
        raise ValueError(
            f"pulumi stack output failed: {(err.stderr or '').strip().splitlines()[-1:]}"
        ) from None
    return json.loads(result.stdout)


def trust_stack_certificate(pem: str | None) -> str | None:
    """With TLS on the public listeners, what this process's HTTPS clients trust: the system's
    CAs and the stack's certificate (self-signed unless configured). `requests` reads
    REQUESTS_CA_BUNDLE wherever a session verifies by default; returns the bundle's path."""
    if not pem:
        return None
    bundle = ca_bundle_file(pem)
    os.environ["REQUESTS_CA_BUNDLE"] = str(bundle)
    return str(bundle)


def verify(
    stack: str,
    outputs: dict[str, Any],
    p95_limit_ms: float,
    runs: int,
    load: bool = False,
    failover: bool = False,
    docker_hosts: list[str] | None = None,
) -> Report:
    """Every check the outputs make possible (a tier that is off has no outputs); the drill
    only when every check before it passed."""
    settings = stack_settings(stack)
    report = Report()
    ca_file = trust_stack_certificate(outputs.get("tlsCertificate"))
    if "neonDatabaseUrl" in outputs:
        report.checks += check_neon(outputs["neonDatabaseUrl"], p95_limit_ms, runs)
        if report.ok:
            report.checks.append(smoke_neon(outputs["neonDatabaseUrl"]))
        if "neonStatusUrls" in outputs and "neonTenantId" in outputs:
            report.checks += check_neon_storage(
                outputs["neonStatusUrls"], outputs["neonTenantId"], outputs.get("neonTimelineIds") or {},
                settings.neon.pitr_retention,
            )  # fmt: skip
        report.checks += check_branches(outputs.get("neonBranchUrls") or {})
    if "kongProxyUrl" in outputs and "kongJwtCredentials" in outputs:
        report.checks += check_kong(
            outputs["kongProxyUrl"], _credentials(outputs), settings.kong.routes, settings.kong.cors.origins
        )
        if "kongAdminUrl" in outputs:
            report.checks.append(check_admin_not_exposed(outputs["kongProxyUrl"], outputs["kongAdminUrl"]))
    if "qdrantUrl" in outputs:
        api_key = outputs.get("qdrantApiKey")
        qdrant = check_qdrant(
            outputs["qdrantUrl"], api_key, settings.qdrant.nodes, settings.qdrant.collections
        )
        if "qdrantGrpcUrl" in outputs:
            qdrant += [
                grpc_search(outputs["qdrantGrpcUrl"], api_key, c, ca_file)
                for c in settings.qdrant.collections
            ]
        report.checks += qdrant
        if settings.qdrant.collections and all(check.ok for check in qdrant):
            report.checks.append(smoke_qdrant(outputs["qdrantUrl"], api_key, settings.qdrant.collections[0]))
    if load and report.ok:
        report.checks += load_checks(outputs, settings)
    if failover and report.ok:
        report.checks += failover_checks(outputs, settings, docker_hosts or list(settings.docker_hosts))
    return report


def failover_checks(outputs: dict[str, Any], settings: StackSettings, hosts: list[str]) -> list[Check]:
    """The failover drill: the last Qdrant node, the last safekeeper, the last MinIO node, then
    the compute, each stopped through its host's Docker API (a service's task is replaced by
    Swarm)."""
    prefix = f"{settings.project}-{settings.stack}"
    checks: list[Check] = []
    if "qdrantUrl" in outputs and settings.qdrant.collections:
        nodes = settings.qdrant.nodes
        checks += qdrant_failover(
            outputs["qdrantUrl"], outputs.get("qdrantApiKey"), nodes, settings.qdrant.collections,
            member(hosts, f"{prefix}-qdrant", nodes - 1, nodes),
        )  # fmt: skip
    if "neonDatabaseUrl" in outputs:
        keepers = settings.neon.safekeepers
        checks += safekeeper_failover(
            outputs["neonDatabaseUrl"], keepers, member(hosts, f"{prefix}-safekeeper", keepers - 1, keepers)
        )
        store = settings.neon.object_storage
        last = member(hosts, f"{prefix}-minio", store.nodes - 1, store.nodes)
        checks += object_storage_failover(outputs["neonStatusUrls"], store, last)
        try:
            compute = running_task(hosts, f"{prefix}-neon-compute")
        except LookupError as err:
            checks.append(Check("failover.compute", False, str(err)))
        else:
            checks += compute_failover(outputs["neonDatabaseUrl"], compute)
    return checks


def load_checks(outputs: dict[str, Any], settings: StackSettings) -> list[Check]:
    """The plan's load criteria, directly on the Qdrant LB and through Kong on a search route,
    judged against the generator's own ceiling on this machine."""
    marks = settings.verify.load
    ceiling = generator_ceiling()
    checks = [Check("load.generator-ceiling", True, f"{ceiling.qps:g} qps against a static endpoint here")]
    collection = settings.qdrant.collections[0] if settings.qdrant.collections else None
    if "qdrantUrl" in outputs and collection is not None:
        search = {"vector": [0.5] * collection.vector_size, "limit": 10}
        result = run_load(
            outputs["qdrantUrl"], f"/collections/{collection.name}/points/search",
            headers={"api-key": outputs.get("qdrantApiKey") or ""}, body=search,
            seconds=marks.seconds, rate=marks.rate,
        )  # fmt: skip
        checks.append(judge("load.qdrant-lb", result, marks, ceiling))
    routes = [r for r in settings.kong.routes if "jwt" not in r.exempt_from]
    if "kongProxyUrl" in outputs and routes and "kongJwtCredentials" in outputs:
        credentials = _credentials(outputs)
        token = issue_token(credentials, credentials["consumers"][0]["username"], marks.seconds + 600)
        result = run_load(
            outputs["kongProxyUrl"], routes[0].paths[0], method="GET",
            headers={"Authorization": f"Bearer {token}"}, seconds=marks.seconds, rate=marks.rate,
        )  # fmt: skip
        checks.append(judge(f"load.kong.{routes[0].name}", result, marks, ceiling))
    return checks


def _credentials(outputs: dict[str, Any]) -> dict[str, Any]:
    credentials = outputs["kongJwtCredentials"]
    return json.loads(credentials) if isinstance(credentials, str) else credentials


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n\n")[1])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--outputs", help="JSON file with the stack's outputs (default: the Pulumi CLI)")
    parser.add_argument(
        "--outputs-env", action="store_true", help="read the outputs from RAG_VERIFY_* variables"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--p95-ms", type=float, default=10.0, help="latency limit of the queries (10 ms)")
    parser.add_argument("--runs", type=int, default=20, help="queries per latency check (20)")
    parser.add_argument(
        "--load", action="store_true", help="also the load test (verify.load in the stack file)"
    )
    parser.add_argument(
        "--failover",
        action="store_true",
        help="also the failover drill (stops a Qdrant node, a safekeeper, the compute)",
    )
    parser.add_argument("--force", action="store_true", help="run the failover drill on a prod stack too")
    parser.add_argument(
        "--docker-host", action="append", dest="docker_hosts", metavar="URL",
        help="the stack's Docker hosts for the drill, in order (default: dockerHosts of the stack file)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.failover and not args.force and stack_settings(args.stack).is_prod:
            print(
                f"verify: --failover stops services of {args.stack}, a prod stack; add --force to mean it",
                file=sys.stderr,
            )
            return 2
        outputs = read_outputs(args.stack, args.outputs, args.outputs_env)
        report = verify(
            args.stack, outputs, args.p95_ms, args.runs, load=args.load,
            failover=args.failover, docker_hosts=args.docker_hosts,
        )  # fmt: skip
    except (OSError, ValueError, RuntimeError, SettingsError) as err:
        print(f"verify: {err}", file=sys.stderr)
        return 2
    for check in report.checks:
        print(check, file=sys.stderr)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        print(
            f"verify: {len(report.failed)} check(s) failed: {', '.join(c.name for c in report.failed)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
