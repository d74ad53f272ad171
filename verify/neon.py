"""Neon checks through the application's DSN: extensions, RAG tables, schema version, and the
latency of a vector and a trigram query against the plan's 10 ms (P95)."""

from __future__ import annotations

import random
import re

import psycopg
import requests
from psycopg import sql

from migration.postgres.catalog import RAG_TABLES
from migration.schema import VERSIONS, schema_files
from verify.report import Check, p95_ms

EXTENSIONS = ("vector", "pg_trgm", "uuid-ossp")
REQUIRED = ("vector", "pg_trgm")
DIMENSIONS = 1024


def check_neon(database_url: str, p95_limit_ms: float = 10.0, runs: int = 20) -> list[Check]:
    """Every Neon check; a connection failure is the one check it reports."""
    try:
        conn = psycopg.connect(database_url, connect_timeout=10, autocommit=True)
    except psycopg.OperationalError as err:
        return [Check("neon.connect", False, " ".join(str(err).split()))]
    with conn:
        checks = [Check("neon.connect", True, "connected")]
        installed = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
        # uuid-ossp is wanted where the server ships it (Neon's computes do), as the schema does.
        missing = [
            name for name in EXTENSIONS if name not in installed and (name in available or name in REQUIRED)
        ]
        checks.append(
            Check(
                "neon.extensions",
                not missing,
                f"missing {', '.join(missing)}" if missing else ", ".join(EXTENSIONS),
            )
        )
        absent = [t for t in RAG_TABLES if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is None]
        checks.append(
            Check("neon.tables", not absent, f"missing {', '.join(absent)}" if absent else "all present")
        )
        checks.append(_schema_version(conn))
        if "vector" in installed and not absent:
            vector = "[" + ",".join(f"{random.random():.4f}" for _ in range(DIMENSIONS)) + "]"  # noqa: S311
            checks.append(
                _latency(
                    "neon.vector-query-p95",
                    lambda: conn.execute(
                        "SELECT id FROM rag.chunks ORDER BY embedding <=> %s::vector LIMIT 10", (vector,)
                    ).fetchall(),
                    p95_limit_ms,
                    runs,
                )
            )
        if "pg_trgm" in installed and not absent:
            checks.append(
                _latency(
                    "neon.trigram-query-p95",
                    lambda: conn.execute(
                        "SELECT id FROM rag.chunks WHERE content %% %s LIMIT 10", ("retrieval augmented",)
                    ).fetchall(),
                    p95_limit_ms,
                    runs,
                )
            )
    return checks


def _schema_version(conn: psycopg.Connection) -> Check:
    wanted = {f.version: f.checksum for f in schema_files()}
    if conn.execute("SELECT to_regclass('rag_meta.schema_versions')").fetchone()[0] is None:
        return Check(
            "neon.schema-version", False, "rag_meta.schema_versions is missing: the schema was never applied"
        )
    found = dict(conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(VERSIONS)).fetchall())
    missing = sorted(set(wanted) - set(found))
    changed = sorted(v for v in wanted if v in found and found[v] != wanted[v])
    if missing or changed:
        return Check(
            "neon.schema-version", False, f"not applied: {missing or '-'}; different: {changed or '-'}"
        )
    return Check("neon.schema-version", True, f"{len(wanted)} files applied, latest {max(wanted)}")


def _latency(name: str, call, limit_ms: float, runs: int) -> Check:
    measured = p95_ms(call, runs)
    return Check(
        name, measured <= limit_ms, f"p95 {measured:.2f} ms over {runs} runs (limit {limit_ms:g} ms)"
    )


def _seconds(duration: str) -> float:
    """humantime as the pageserver reads it ('30 days', '7d', '1h 30m') -> seconds."""
    units = {"s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600,
             "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400,
             "w": 604800, "week": 604800, "weeks": 604800}  # fmt: skip
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)\s*([a-z]+)", duration))


def check_neon_storage(
    status_urls: dict[str, str], tenant_id: str, timeline_ids: dict[str, str], pitr_retention: str
) -> list[Check]:
    """Through the storage controller: the tenant, every branch's timeline and the PITR
    retention; every safekeeper's status. These ports are on the hosts' loopback: from another
    machine, run `python -m components.platform.tunnels` first."""
    controller = status_urls["storageController"].removesuffix("/status")
    tunnels = " (on the host's loopback: open the tunnels, python -m components.platform.tunnels)"
    try:
        tenant = requests.get(f"{controller}/v1/tenant/{tenant_id}", timeout=10)
        listed = requests.get(f"{controller}/v1/tenant/{tenant_id}/timeline", timeout=10)
        config = requests.get(f"{controller}/v1/tenant/{tenant_id}/config", timeout=10)
    except requests.RequestException as err:
        return [Check("neon.controller", False, f"{controller}: {type(err).__name__}{tunnels}")]
    checks = [
        Check("neon.tenant", tenant.status_code == 200, f"tenant {tenant_id}: HTTP {tenant.status_code}")
    ]
    found = {t.get("timeline_id") for t in listed.json()} if listed.status_code == 200 else set()
    missing = sorted(name for name, timeline in timeline_ids.items() if timeline not in found)
    checks.append(
        Check(
            "neon.timelines",
            listed.status_code == 200 and not missing,
            f"{len(timeline_ids)} branch timeline(s), the controller lists {len(found)}"
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        )
    )
    overrides = config.json().get("tenant_specific_overrides", {}) if config.status_code == 200 else {}
    pitr = overrides.get("pitr_interval")
    checks.append(
        Check(
            "neon.pitr-retention",
            pitr is not None and _seconds(pitr) == _seconds(pitr_retention),
            f"pitr_interval {pitr!r} (neon.pitrRetention {pitr_retention!r})",
        )
    )
    for name, url in sorted(status_urls.items()):
        # The quorum members: each safekeeper, and each MinIO node's view of its write quorum.
        if not name.startswith(("safekeeper", "minio")):
            continue
        try:
            status = requests.get(url, timeout=5).status_code
        except requests.RequestException as err:
            status = type(err).__name__
        checks.append(Check(f"neon.{name}", status == 200, f"{url}: {status}"))
    return checks


def check_branches(branch_urls: dict[str, str]) -> list[Check]:
    """Each branch with a compute of its own answers on it, with its own database."""
    checks = []
    for name, url in sorted(branch_urls.items()):
        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                database = conn.execute("SELECT current_database()").fetchone()[0]
            checks.append(Check(f"neon.branch.{name}", True, f"answers on its compute ({database})"))
        except psycopg.Error as err:
            checks.append(Check(f"neon.branch.{name}", False, str(err).strip().splitlines()[0][:200]))
    return checks
