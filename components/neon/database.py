"""NeonDatabase: the Neon tier end to end: storage, tenant, main and branch timelines,
computes and the RAG schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_random as random

from components.monitoring.scrape import ScrapeJob, ScrapeTarget
from components.neon.compute import ComputeImageArgs, NeonCompute, NeonComputeArgs
from components.neon.config import (
    BROKER_ALIAS,
    BROKER_PORT,
    COMPUTE_ALIAS,
    COMPUTE_HTTP_PORT,
    COMPUTE_PG_PORT,
    CONTROLLER_ALIAS,
    CONTROLLER_PORT,
    MINIO_PORT,
    PAGESERVER_ALIAS,
    PAGESERVER_HTTP_PORT,
    PAGESERVER_PG_PORT,
    POOLER_ALIAS,
    POOLER_PORT,
    POOLER_TLS_CERT,
    POOLER_TLS_KEY,
    ComputeSpec,
    render_compute_config,
    render_pgbouncer_ini,
    render_pgbouncer_userlist,
    safekeeper_alias,
    scram_verifier,
)
from components.neon.object_storage import MINIO_CLUSTER_METRICS_PATH
from components.neon.object_storage import node_alias as minio_node_alias
from components.neon.pooler import NeonPooler, NeonPoolerArgs
from components.neon.rag_schema import RagSchema, RagSchemaArgs
from components.neon.settings import NeonSettings
from components.neon.storage import NeonStorage, NeonStorageArgs
from components.neon.tenant import NeonTenant, NeonTenantArgs
from components.neon.timeline import NeonTimeline, NeonTimelineArgs
from components.platform.hosts import DockerHosts
from components.platform.secrets import secret_or_generated
from components.platform.tls import TlsMaterial
from migration.schema import schema_fingerprint


def computes(settings: NeonSettings) -> list[tuple[str, str, int]]:
    """(branch, alias, published port) of every compute: main's, then each branch's that has one."""
    return [("main", COMPUTE_ALIAS, settings.compute_port)] + [
        (b.name, f"{COMPUTE_ALIAS}-{b.name}", b.compute_port) for b in settings.branches if b.compute
    ]


def scrape_jobs(settings: NeonSettings) -> list[ScrapeJob]:
    """Every Neon service's /metrics (open without a token, storage_controller/src/http.rs,
    pageserver and safekeeper http/routes.rs, compute_ctl's HTTP server); the broker serves it
    over HTTP/1 on its gRPC port. MinIO's cluster metrics come from every node (each reports the
    whole deployment, so one node lost still leaves the drives' and quorum's state seen); they
    need no token with MINIO_PROMETHEUS_AUTH_TYPE=public (object_storage.py)."""

    def job(name: str, members: list[tuple[str, int]], path: str = "/metrics") -> ScrapeJob:
        targets = [ScrapeTarget(f"{alias}:{port}", alias) for alias, port in members]
        return ScrapeJob(name, "neon", targets=targets, metrics_path=path)

    storage = settings.object_storage
    return [
        job("neon-storage-broker", [(BROKER_ALIAS, BROKER_PORT)]),
        job("neon-pageserver", [(PAGESERVER_ALIAS, PAGESERVER_HTTP_PORT)]),
        job(
            "neon-safekeeper",
            [(safekeeper_alias(i), settings.safekeeper_http_port) for i in range(settings.safekeepers)],
        ),
        job("neon-storage-controller", [(CONTROLLER_ALIAS, CONTROLLER_PORT)]),
        job("neon-compute", [(alias, COMPUTE_HTTP_PORT) for _, alias, _ in computes(settings)]),
        job(
            "minio",
            [(minio_node_alias(storage, i), MINIO_PORT) for i in range(storage.nodes)],
            MINIO_CLUSTER_METRICS_PATH,
        ),
    ]


@dataclass(frozen=True)
class NeonDatabaseArgs:
    """Inputs of the Neon tier."""

    settings: NeonSettings
    hosts: DockerHosts
    password: pulumi.Output[str] | None
    """Configured `neonPassword` of the database user; generated when None."""
    operator_access: Sequence[pulumi.Resource] = ()
    """What publishes the storage tier's operator ports (OperatorAccess, with
    `operator_forwards`): the tenant, timeline and gate resources reach the APIs there."""
    tls: TlsMaterial | None = None
    """The public listeners' certificate: the pooler then accepts TLS clients only."""


def _dsn(user: str, password: str, hosts: Sequence[str], port: int, database: str) -> str:
    """A libpq URI; with several hosts, clients try each in turn (libpq's multi-host URIs)."""
    netloc = ",".join(f"{host}:{port}" for host in hosts)
    return f"postgresql://{user}:{quote(password, safe='')}@{netloc}/{database}"


class NeonDatabase(pulumi.ComponentResource):
    """Serverless Postgres with pgvector for the RAG application, and its Git-like branches."""

    database_url: pulumi.Output[str]
    internal_url: pulumi.Output[str]
    pooled_url: pulumi.Output[str]
    """Through pgbouncer (transaction pooling), as reached from the machine running Pulumi."""
    internal_pooled_url: pulumi.Output[str]
    status_urls: pulumi.Output[dict]
    branch_urls: pulumi.Output[dict]

    def __init__(self, name: str, args: NeonDatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonDatabase", name, None, opts)
        settings, hosts = args.settings, args.hosts
        child = pulumi.ResourceOptions(parent=self)
        password = secret_or_generated(f"{name}-password", args.password, parent=self)

        def hex_id(what: str, keepers: dict[str, pulumi.Input[str]] | None = None) -> pulumi.Output[str]:
            # 32 lowercase hex characters, kept in state so every run targets the same ids; a
            # change of a keeper draws a new id, so a re-created timeline never inherits the
            # old one's safekeeper state (nor its 24 h tombstone there).
            return random.RandomId(f"{name}-{what}-id", byte_length=16, keepers=keepers, opts=child).hex

        tenant_id = hex_id("tenant")
        self.tenant_id = tenant_id
        branches = [
            ("main", None, None, None),
            *((b.name, b.parent, b.lsn, b.timestamp) for b in settings.branches),
        ]
        timeline_ids: dict[str, pulumi.Output[str]] = {}
        for branch_name, parent, lsn, timestamp in branches:
            # main is never re-created (NeonTimeline refuses it); a branch is, when it moves.
            keepers = (
                {"parent": timeline_ids[parent], "lsn": lsn or "", "timestamp": timestamp or ""}
                if parent
                else None
            )
            timeline_ids[branch_name] = hex_id(f"timeline-{branch_name}", keepers)
        self.timeline_ids = pulumi.Output.all(**timeline_ids)

        self.storage = NeonStorage(
            f"{name}-storage",
            NeonStorageArgs(
                settings=settings,
                hosts=hosts,
                tenant_id=tenant_id,
                timeline_ids=self.timeline_ids,
                operator_access=args.operator_access,
            ),
            child,
        )
        controller_url = self.storage.controller_url
        self.tenant = NeonTenant(
            f"{name}-tenant",
            NeonTenantArgs(
                controller_url=controller_url, tenant_id=tenant_id, pitr_interval=settings.pitr_retention
            ),
            pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    self.storage.pageserver,
                    self.storage.controller,
                    *self.storage.safekeeper_gates,
                    *args.operator_access,
                ],
            ),
        )
        timelines: dict[str, NeonTimeline] = {}
        for branch_name, parent, lsn, timestamp in branches:
            timelines[branch_name] = NeonTimeline(
                f"{name}-timeline-{branch_name}",
                NeonTimelineArgs(
                    controller_url=controller_url,
                    tenant_id=tenant_id,
                    timeline_id=timeline_ids[branch_name],
                    name=branch_name,
                    pg_version=settings.pg_version,
                    ancestor_timeline_id=timeline_ids[parent] if parent else None,
                    ancestor_start_lsn=lsn,
                    ancestor_timestamp=timestamp,
                    safekeeper_urls=tuple(self.storage.safekeeper_api_urls),
                ),
                pulumi.ResourceOptions(
                    parent=self, depends_on=[self.tenant, *([timelines[parent]] if parent else [])]
                ),
            )

        self.computes: dict[str, NeonCompute] = {}
        # The role's password is stored as a SCRAM verifier; its salt is drawn once and kept.
        salt = random.RandomId(f"{name}-password-salt", byte_length=16, opts=child).b64_std
        for branch_name, alias, port in computes(settings):
            config = pulumi.Output.all(tenant_id, timeline_ids[branch_name], password, salt).apply(
                lambda values: render_compute_config(
                    ComputeSpec(
                        tenant_id=values[0],
                        timeline_id=values[1],
                        pageserver_pg_port=PAGESERVER_PG_PORT,
                        safekeepers=settings.safekeepers,
                        database=settings.database,
                        user=settings.user,
                        password=values[2],
                        password_salt=values[3],
                        pg_version=settings.pg_version,
                    )
                )
            )
            self.computes[branch_name] = NeonCompute(
                f"{name}-compute-{branch_name}",
                NeonComputeArgs(
                    hosts=hosts,
                    image=settings.compute_image,
                    alias=alias,
                    port=port,
                    config_json=config,
                    memory_mb=settings.memory_mb,
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[timelines[branch_name]]),
            )

        tls = args.tls
        self.pooler = NeonPooler(
            f"{name}-pooler",
            NeonPoolerArgs(
                service=ComputeImageArgs(
                    hosts=hosts,
                    image=settings.compute_image,
                    alias=POOLER_ALIAS,
                    port=settings.pooler_port,
                    memory_mb=settings.memory_mb,
                ),
                replicas=settings.pooler_replicas or hosts.host_count,
                ini=render_pgbouncer_ini(
                    settings.database, tls=(POOLER_TLS_CERT, POOLER_TLS_KEY) if tls else None
                ),
                tls=tls,
                userlist=pulumi.Output.all(password, salt).apply(
                    lambda values: render_pgbouncer_userlist(settings.user, scram_verifier(*values))
                ),
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[self.computes["main"].service]),
        )

        # A compute or pooler task answers on the host Swarm runs it on, and a compute moves
        # when its host fails: the URLs name every host, and libpq tries them in turn.
        public_hosts = list(dict.fromkeys(hosts.reachable_host(i) for i in range(hosts.host_count)))
        self.database_url = pulumi.Output.secret(
            password.apply(
                lambda p: _dsn(settings.user, p, public_hosts, settings.compute_port, settings.database)
            )
        )
        self.internal_url = pulumi.Output.secret(
            password.apply(
                lambda p: _dsn(settings.user, p, [COMPUTE_ALIAS], COMPUTE_PG_PORT, settings.database)
            )
        )
        # With TLS the pooler refuses plaintext: say so in the URL (libpq's default would
        # negotiate it anyway). To check the certificate too, add sslmode=verify-full and
        # sslrootcert=<the output tlsCertificate saved to a file>.
        pooled_options = "?sslmode=require" if tls else ""
        self.pooled_url = pulumi.Output.secret(
            password.apply(
                lambda p: (
                    _dsn(settings.user, p, public_hosts, settings.pooler_port, settings.database)
                    + pooled_options
                )
            )
        )
        self.internal_pooled_url = pulumi.Output.secret(
            password.apply(lambda p: _dsn(settings.user, p, [POOLER_ALIAS], POOLER_PORT, settings.database))
        )
        self.branch_urls = pulumi.Output.secret(
            password.apply(
                lambda p: {
                    b.name: _dsn(settings.user, p, public_hosts, b.compute_port, settings.database)
                    for b in settings.branches
                    if b.compute and b.compute_port
                }
            )
        )
        self.schema = RagSchema(
            f"{name}-schema",
            RagSchemaArgs(dsn=self.database_url, versions=schema_fingerprint()),
            pulumi.ResourceOptions(parent=self, depends_on=[self.computes["main"].service]),
        )
        self.status_urls = self.storage.status_urls
        self.register_outputs(
            {
                "tenantId": self.tenant_id,
                "timelineIds": self.timeline_ids,
                "databaseUrl": self.database_url,
                "internalUrl": self.internal_url,
                "pooledUrl": self.pooled_url,
                "internalPooledUrl": self.internal_pooled_url,
                "statusUrls": self.status_urls,
                "branchUrls": self.branch_urls,
            }
        )
