"""rag-infra: settings -> Docker hosts -> operator access, the public listeners' certificate ->
tiers -> monitoring -> migrations -> post-deploy checks -> exports."""

import json

import pulumi

from components.kong.gateway import KongGateway, KongGatewayArgs
from components.monitoring.monitoring import Monitoring, MonitoringArgs
from components.neon.database import NeonDatabase, NeonDatabaseArgs
from components.neon.object_storage import MINIO_USER
from components.operator_forwards import stack_operator_forwards
from components.platform.app_env import app_env
from components.platform.hosts import DockerHosts, DockerHostsArgs
from components.platform.operator_access import OperatorAccess, OperatorAccessArgs
from components.platform.settings import DEFAULT_NGINX_IMAGE
from components.platform.tls import stack_certificate
from components.qdrant.backups import QdrantBackups, QdrantBackupsArgs
from components.qdrant.backups import deployed as backups_deployed
from components.qdrant.cluster import QdrantCluster, QdrantClusterArgs
from components.scrape_targets import scrape_credentials, stack_alert_targets, stack_scrape_jobs
from components.settings import load_settings
from migration.postgres.resource import PostgresMigration, PostgresMigrationArgs
from migration.qdrant.resource import QdrantMigration, QdrantMigrationArgs
from verify.gate import VerificationGate, VerificationGateArgs

settings = load_settings()

hosts = DockerHosts(
    "docker",
    DockerHostsArgs(
        project=settings.project,
        stack=settings.stack,
        hosts=settings.docker_hosts,
        retain_volumes=settings.is_prod,
    ),
)

# The admin and operator ports no Swarm service may publish, on the manager's loopback. It
# comes first: the Neon tier's own resources reach the storage APIs through it.
forwards = stack_operator_forwards(settings)
operator_access = (
    OperatorAccess(
        "operator-access", OperatorAccessArgs(hosts=hosts, forwards=forwards, image=DEFAULT_NGINX_IMAGE)
    )
    if forwards
    else None
)

# One certificate for every public listener (Kong's proxy, the Qdrant LB, the pooler).
tls = (
    stack_certificate(
        "tls",
        [hosts.reachable_host(i) for i in range(hosts.host_count)],
        settings.secrets.tls_certificate,
        settings.secrets.tls_private_key,
    )
    if settings.tls.enabled
    else None
)

neon = (
    NeonDatabase(
        "neon",
        NeonDatabaseArgs(
            settings=settings.neon,
            hosts=hosts,
            password=settings.secrets.neon_password,
            operator_access=[operator_access] if operator_access else [],
            tls=tls,
        ),
    )
    if settings.features.neon
    else None
)

qdrant = (
    QdrantCluster(
        "qdrant",
        QdrantClusterArgs(
            settings=settings.qdrant, hosts=hosts, api_key=settings.secrets.qdrant_api_key, tls=tls
        ),
    )
    if settings.features.qdrant_cluster
    else None
)

kong = (
    KongGateway(
        "kong",
        KongGatewayArgs(
            settings=settings.kong, hosts=hosts, jwt_secret=settings.secrets.kong_jwt_secret, tls=tls
        ),
    )
    if settings.features.kong_gateway
    else None
)

# Snapshots of every collection into the Neon tier's object storage (the stack's only store).
qdrant_backups = (
    QdrantBackups(
        "qdrant-backups",
        QdrantBackupsArgs(
            settings=settings.qdrant.backups,
            hosts=hosts,
            nodes=qdrant.node_urls,
            collections=[c.name for c in settings.qdrant.collections],
            api_key=qdrant.api_key,
            store_url=neon.storage.object_storage_url,
            store_user=MINIO_USER,
            store_password=neon.storage.minio_password,
        ),
        pulumi.ResourceOptions(depends_on=[*qdrant.collections, neon.storage]),
    )
    if qdrant and neon and backups_deployed(settings)
    else None
)
if qdrant and settings.qdrant.backups.enabled and not neon:
    pulumi.log.warn("qdrant.backups: no object storage without the Neon tier (features.neon: false)")

# Scrapes every service the tiers above run; alerts on the plan's criteria and the quorums.
monitoring = (
    Monitoring(
        "monitoring",
        MonitoringArgs(
            settings=settings.monitoring,
            hosts=hosts,
            stack=settings.stack,
            jobs=stack_scrape_jobs(settings),
            alert_targets=stack_alert_targets(settings),
            credentials=scrape_credentials(qdrant.api_key if qdrant else None),
            webhook_url=settings.secrets.alert_webhook_url,
        ),
    )
    if settings.features.monitoring
    else None
)

postgres_migration = (
    PostgresMigration(
        "postgres-migration",
        PostgresMigrationArgs(
            source_dsn=settings.secrets.timescale_url,
            target_dsn=neon.database_url,
            tables=list(settings.migration.postgres.tables),
            batch_rows=settings.migration.postgres.batch_rows,
        ),
        pulumi.ResourceOptions(depends_on=[neon.schema]),
    )
    if neon and settings.migration.postgres.enabled
    else None
)

qdrant_migrations = (
    {
        collection.name: QdrantMigration(
            f"qdrant-migration-{collection.name}",
            QdrantMigrationArgs(
                source_url=settings.migration.qdrant.source_url,
                source_api_key=settings.secrets.old_qdrant_api_key,
                target_url=qdrant.url,
                target_api_key=qdrant.api_key,
                target_ca_certificate=tls.certificate if tls else None,
                collection=collection.name,
                batch_size=settings.migration.qdrant.batch_size,
            ),
            pulumi.ResourceOptions(depends_on=[qdrant.collection(collection.name)]),
        )
        for collection in settings.qdrant.collections
        if collection.name in settings.migration.qdrant.collections
    }
    if qdrant and settings.migration.qdrant.enabled
    else {}
)

checked: dict[str, pulumi.Output] = {}
if neon:
    checked |= {
        "neonDatabaseUrl": neon.database_url,
        "neonStatusUrls": neon.status_urls.apply(json.dumps),
        "neonTenantId": neon.tenant_id,
        "neonTimelineIds": neon.timeline_ids.apply(json.dumps),
        "neonBranchUrls": neon.branch_urls.apply(json.dumps),
    }
if qdrant:
    checked |= {"qdrantUrl": qdrant.url, "qdrantGrpcUrl": qdrant.grpc_url, "qdrantApiKey": qdrant.api_key}
if kong:
    checked |= {
        "kongProxyUrl": kong.proxy_url,
        "kongJwtCredentials": kong.credentials,
        "kongAdminUrl": kong.admin_url,
    }
if tls and checked:
    checked["tlsCertificate"] = tls.certificate
gate = (
    VerificationGate(
        "verification",
        VerificationGateArgs(stack=settings.stack, settings=settings.verify, outputs=checked),
        pulumi.ResourceOptions(
            depends_on=[
                tier
                for tier in (
                    neon,
                    qdrant,
                    kong,
                    operator_access,
                    postgres_migration,
                    *qdrant_migrations.values(),
                )
                if tier is not None
            ]
        ),
    )
    if settings.verify.enabled and checked
    else None
)

if neon:
    pulumi.export("neonDatabaseUrl", neon.database_url)
    pulumi.export("neonPooledUrl", neon.pooled_url)
    pulumi.export("neonStatusUrls", neon.status_urls)
    pulumi.export("neonTenantId", neon.tenant_id)
    pulumi.export("neonTimelineIds", neon.timeline_ids)
    pulumi.export("neonBranchUrls", neon.branch_urls)

if qdrant:
    pulumi.export("qdrantUrl", qdrant.url)
    pulumi.export("qdrantUrls", qdrant.urls)
    pulumi.export("qdrantGrpcUrl", qdrant.grpc_url)
    pulumi.export("qdrantApiKey", qdrant.api_key)

if kong:
    pulumi.export("kongProxyUrl", kong.proxy_url)
    pulumi.export("kongProxyUrls", kong.proxy_urls)
    pulumi.export("kongAdminUrl", kong.admin_url)
    pulumi.export("kongJwtCredentials", kong.credentials)

if monitoring:
    pulumi.export("prometheusUrl", monitoring.prometheus_url)
    pulumi.export("alertmanagerUrl", monitoring.alertmanager_url)
    pulumi.export("grafanaUrl", monitoring.grafana_url)
    pulumi.export("grafanaAdminPassword", monitoring.grafana_admin_password)

if tls:
    # What clients of the https:// URLs trust (the chain served; self-signed unless configured).
    pulumi.export("tlsCertificate", tls.certificate)

if gate:
    pulumi.export("verification", gate.report)
if postgres_migration:
    pulumi.export("postgresMigration", postgres_migration.report)
if qdrant_migrations:
    pulumi.export("qdrantMigration", {name: m.report for name, m in qdrant_migrations.items()})

pulumi.export(
    "appEnv",
    app_env(
        neon_database_url=neon.internal_url if neon else None,
        qdrant_cluster_url=qdrant.internal_url if qdrant else None,
        kong_gateway_url=kong.internal_url if kong else None,
        neon_pooled_url=neon.internal_pooled_url if neon else None,
    ),
)
