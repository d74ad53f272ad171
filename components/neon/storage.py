"""NeonStorage: Neon's storage tier as Swarm services, run with a storage controller.

MinIO (and its bucket) -> controller Postgres -> storage controller (+ its compute-notification
endpoint) -> storage broker -> pageserver -> safekeepers, one at a time. Neon's own
docker-compose runs the pageserver in emergency mode without a controller, which its README
says is not a usable system (facts/neon.md §7); this tier runs the controller.

Members with data (MinIO, the controller's database, the pageserver, each safekeeper) are pinned
to the host of their volume; the broker, the controller and the notify endpoint hold nothing
and go wherever Swarm puts them. No service publishes a port: the operator ports are forwarded
by OperatorAccess on the first host's loopback (`operator_forwards`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.neon.config import (
    BROKER_ALIAS,
    BROKER_PORT,
    CONTROLLER_ALIAS,
    CONTROLLER_PORT,
    MINIO_ALIAS,
    MINIO_PORT,
    NOTIFY_ALIAS,
    NOTIFY_PORT,
    PAGESERVER_ALIAS,
    PAGESERVER_HTTP_PORT,
    PAGESERVER_PG_PORT,
    PAGESERVER_TENANTS,
    RemoteStorage,
    render_aws_credentials,
    render_identity_toml,
    render_metadata_json,
    render_notify_conf,
    render_pageserver_toml,
    safekeeper_alias,
    safekeeper_command,
)
from components.neon.controller_backups import ControllerBackups, ControllerBackupsArgs
from components.neon.object_storage import CLUSTER_HEALTH, MINIO_USER, ObjectStorageArgs, object_storage
from components.neon.object_storage import operator_forwards as object_storage_forwards
from components.neon.safekeeper_gate import SafekeeperReady, SafekeeperReadyArgs
from components.neon.settings import NeonSettings
from components.platform.hosts import DockerHosts, round_robin
from components.platform.operator_access import LOOPBACK, Forward
from components.platform.postgres import DATA_PATH, PostgresArgs, postgres_service
from components.platform.probes import bash_http_probe
from components.platform.secrets import secret_or_generated
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec, SwarmService
from components.platform.settings import DEFAULT_NGINX_IMAGE, DEFAULT_POSTGRES_IMAGE

CONTROLLER_DB_ALIAS = "storage-controller-db"
CONTROLLER_DB = "storage_controller"
CONTROLLER_DB_USER = "storage_controller"
PAGESERVER_WORKDIR = "/data/.neon"
S3_CREDENTIALS_FILE = "/run/secrets/aws-credentials"
"""The S3 key pair as an AWS shared credentials file: the pageserver's and safekeepers' S3
client falls back to it when no AWS_* variable is set (libs/remote_storage/src/s3_bucket.rs:
environment, then the profile file that AWS_SHARED_CREDENTIALS_FILE names)."""
CONTROLLER_DB_URL_FILE = "/run/secrets/storage-controller-database-url"
"""The controller takes its database URL only from `--database-url` or DATABASE_URL
(storage_controller/src/main.rs): a shell reads this secret into its environment at start."""


def operator_forwards(settings: NeonSettings) -> list[Forward]:
    """The storage tier's operator ports, as OperatorAccess publishes them on the first host:
    the controller's API (the tenant and timeline resources use it), the pageserver's HTTP and
    libpq ports, and each safekeeper's API (timeline deletion, the rollout gates)."""
    port = settings.safekeeper_http_port
    return [
        Forward(CONTROLLER_PORT, CONTROLLER_ALIAS, CONTROLLER_PORT, "Neon storage controller API"),
        Forward(PAGESERVER_HTTP_PORT, PAGESERVER_ALIAS, PAGESERVER_HTTP_PORT, "pageserver HTTP API"),
        Forward(settings.pageserver_pg_port, PAGESERVER_ALIAS, PAGESERVER_PG_PORT, "pageserver libpq"),
        *(
            Forward(port + i, safekeeper_alias(i), port, f"safekeeper {i} HTTP API")
            for i in range(settings.safekeepers)
        ),
        *object_storage_forwards(settings.object_storage),
    ]


def controller_entrypoint(args: Sequence[str]) -> list[str]:
    """`storage_controller args…` with DATABASE_URL read from its secret file first; the
    command line of the running process then carries no password."""
    # A plain assignment fails with its command substitution: an unreadable secret stops the
    # task here (Swarm restarts it) instead of starting the controller without a database.
    script = (
        f'DATABASE_URL="$(cat {CONTROLLER_DB_URL_FILE})" || exit 1; export DATABASE_URL; '
        'exec /usr/local/bin/storage_controller "$@"'
    )
    return ["/bin/sh", "-c", script, "storage_controller", *args]


@dataclass(frozen=True)
class NeonStorageArgs:
    """Inputs of the storage tier."""

    settings: NeonSettings
    hosts: DockerHosts
    tenant_id: pulumi.Input[str]
    timeline_ids: pulumi.Input[dict]
    """Ids of the tenant's timelines (drawn before the timelines exist): what each safekeeper's
    rollout gate checks it has caught up on."""
    operator_access: Sequence[pulumi.Resource] = ()
    """What publishes the operator ports (OperatorAccess): the gates reach the safekeepers there."""


class NeonStorage(pulumi.ComponentResource):
    """MinIO, storage controller, broker, pageserver and the safekeeper quorum."""

    controller_url: pulumi.Output[str]
    status_urls: pulumi.Output[dict]
    safekeeper_api_urls: list[str]
    pageserver: SwarmService
    safekeepers: list[SwarmService]
    safekeeper_gates: list[SafekeeperReady]
    controller: SwarmService

    def __init__(self, name: str, args: NeonStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonStorage", name, None, opts)
        self._name = name
        settings, hosts = args.settings, args.hosts
        self._hosts = hosts
        self._settings = settings
        self._images: dict[str, pulumi.Output[str]] = {}
        storage = RemoteStorage(bucket=settings.object_storage.bucket, region=settings.object_storage.region)

        local = hosts.reachable_host(0) == "localhost"
        operator_host = "localhost" if local else LOOPBACK
        minio_password = secret_or_generated(f"{name}-minio-password", None, parent=self)
        self.minio_password = minio_password
        """The object storage's root password (the Qdrant backups write with it too)."""
        self.object_storage_url = f"http://{MINIO_ALIAS}:{MINIO_PORT}"
        """Its S3 endpoint on the stack network (every node, by the shared name)."""
        s3_credentials = ServiceFile(
            S3_CREDENTIALS_FILE,
            minio_password.apply(lambda p: render_aws_credentials(MINIO_USER, p)),
            secret=True,
        )
        s3_env = {"AWS_SHARED_CREDENTIALS_FILE": S3_CREDENTIALS_FILE}
        # Each MinIO node's port on the first host's loopback, as OperatorAccess forwards it.
        store_ports = [forward.port for forward in object_storage_forwards(settings.object_storage)]
        store = object_storage(
            name,
            ObjectStorageArgs(
                settings=settings.object_storage,
                hosts=hosts,
                image=self._image(settings.object_storage.image),
                password=minio_password,
                api_urls=[f"http://{operator_host}:{port}" for port in store_ports],
                memory_mb=settings.memory_mb,
                operator_access=args.operator_access,
            ),
            parent=self,
        )
        bucket = store.bucket
        controller = self._controller()
        self.backups = (
            ControllerBackups(
                f"{name}-controller-backups",
                ControllerBackupsArgs(
                    settings=settings.controller_backups,
                    hosts=hosts,
                    postgres_image=self._image(DEFAULT_POSTGRES_IMAGE),
                    db_host=CONTROLLER_DB_ALIAS,
                    db_user=CONTROLLER_DB_USER,
                    db_name=CONTROLLER_DB,
                    db_password=self._controller_db_password,
                    store_url=self.object_storage_url,
                    store_user=MINIO_USER,
                    store_password=minio_password,
                    neon_bucket=settings.object_storage.bucket,
                    tenants_prefix=PAGESERVER_TENANTS,
                    controller_url=f"http://{CONTROLLER_ALIAS}:{CONTROLLER_PORT}",
                ),
                pulumi.ResourceOptions(parent=self, depends_on=[controller, bucket]),
            )
            if settings.controller_backups.enabled
            else None
        )
        """The controller database's dumps (neon.controllerBackups), or None when off."""
        broker = hosts.service(
            f"{name}-broker",
            ServiceSpec(
                alias=BROKER_ALIAS,
                component="neon-storage-broker",
                image=self._image(settings.storage_image),
                command=["/usr/local/bin/storage_broker", f"--listen-addr=0.0.0.0:{BROKER_PORT}"],
                memory_mb=settings.memory_mb,
                health=self._http_check(BROKER_PORT, "/status"),
            ),
            parent=self,
        )
        self.pageserver = hosts.service(
            f"{name}-pageserver",
            ServiceSpec(
                alias=PAGESERVER_ALIAS,
                component="neon-pageserver",
                image=self._image(settings.storage_image),
                command=["/usr/local/bin/pageserver", "-D", PAGESERVER_WORKDIR],
                env=s3_env,
                files=[
                    # In its workdir, where it reads them (mounted over its volume).
                    ServiceFile(f"{PAGESERVER_WORKDIR}/pageserver.toml", render_pageserver_toml(storage)),
                    ServiceFile(f"{PAGESERVER_WORKDIR}/identity.toml", render_identity_toml()),
                    ServiceFile(f"{PAGESERVER_WORKDIR}/metadata.json", render_metadata_json()),
                    s3_credentials,
                ],
                mounts=[self._volume("pageserver", "/data", 0)],
                # Stop-first on its volume: two pageservers on one bucket prefix in one
                # generation is the split brain generations exist to prevent.
                pinned_to=0,
                memory_mb=settings.memory_mb,
                # The HTTP API starts only after re-attach with the controller has succeeded.
                health=self._http_check(PAGESERVER_HTTP_PORT, "/v1/status"),
            ),
            parent=self,
            depends_on=[controller, broker, bucket],
        )

        # Each safekeeper's API on the first host's loopback (OperatorAccess), as reached from
        # where `pulumi up` runs: timeline deletion removes the timeline from every one of them.
        self.safekeeper_api_urls = [
            f"http://{operator_host}:{settings.safekeeper_http_port + i}" for i in range(settings.safekeepers)
        ]
        self.safekeepers, self.safekeeper_gates = [], []
        for index, slot in enumerate(round_robin(settings.safekeepers, hosts.host_count)):
            safekeeper = hosts.service(
                f"{name}-safekeeper-{index}",
                ServiceSpec(
                    alias=safekeeper_alias(index),
                    component="neon-safekeeper",
                    image=self._image(settings.storage_image),
                    # It binds --listen-pg on what its own name resolves to: the task's address.
                    hostname=safekeeper_alias(index),
                    command=safekeeper_command(index, storage, settings.safekeeper_http_port),
                    env=s3_env,
                    files=[s3_credentials],
                    mounts=[self._volume(f"safekeeper-{index}", "/data", slot)],
                    pinned_to=slot,
                    # The walproposer holds one WAL stream per safekeeper for as long as the
                    # compute runs: DNS round robin, no virtual IP in between.
                    endpoint_mode="dnsrr",
                    memory_mb=settings.memory_mb,
                    health=self._http_check(settings.safekeeper_http_port, "/v1/status"),
                ),
                parent=self,
                # One member at a time, creation and every later rollout: the next waits until
                # this one is back with every timeline caught up (a majority always stands).
                depends_on=[broker, bucket, *self.safekeeper_gates[-1:]],
            )
            self.safekeeper_gates.append(
                SafekeeperReady(
                    f"{name}-safekeeper-{index}-ready",
                    SafekeeperReadyArgs(
                        urls=self.safekeeper_api_urls,
                        index=index,
                        node_id=index + 1,
                        tenant_id=args.tenant_id,
                        timeline_ids=args.timeline_ids,
                        revision=safekeeper.revision,
                    ),
                    pulumi.ResourceOptions(parent=self, depends_on=[safekeeper, *args.operator_access]),
                )
            )
            self.safekeepers.append(safekeeper)
        self.controller = controller

        # The controller's API on the first host's loopback (OperatorAccess). From another
        # machine, reach it through an SSH tunnel (README "Neon").
        self.controller_url = pulumi.Output.from_input(f"http://{operator_host}:{CONTROLLER_PORT}")
        self.status_urls = pulumi.Output.from_input(
            {
                "storageController": f"http://{LOOPBACK}:{CONTROLLER_PORT}/status",
                "pageserver": f"http://{LOOPBACK}:{PAGESERVER_HTTP_PORT}/v1/status",
                **{
                    f"safekeeper{i}": f"http://{LOOPBACK}:{settings.safekeeper_http_port + i}/v1/status"
                    for i in range(settings.safekeepers)
                },
                # 200 only while the store has a write quorum of drives online.
                **{
                    f"minio{i}": f"http://{LOOPBACK}:{port}{CLUSTER_HEALTH}"
                    for i, port in enumerate(store_ports)
                },
            }
        )
        self.register_outputs({"controllerUrl": self.controller_url, "statusUrls": self.status_urls})

    # -- helpers ---------------------------------------------------------------------------

    def _image(self, ref: str) -> pulumi.Output[str]:
        """`ref` pulled once on the manager, as the digest every service of it runs."""
        if ref not in self._images:
            suffix = ref.split("/")[-1].split(":")[0].split("@")[0]
            self._images[ref] = self._hosts.image_ref(f"{self._name}-image-{suffix}", ref, self)
        return self._images[ref]

    def _volume(self, what: str, path: str, host_index: int) -> Mount:
        opts = pulumi.ResourceOptions(parent=self, provider=self._hosts.providers[host_index])
        volume = self._hosts.volume(f"{self._name}-{what}-data", f"neon-{what}-data", "neon", opts)
        return Mount(volume.name, path)

    def _http_check(self, port: int, path: str) -> HealthCheck:
        return HealthCheck(bash_http_probe(port, path), retries=6, start_period="30s")

    def _controller(self) -> SwarmService:
        hosts = self._hosts
        password = secret_or_generated(f"{self._name}-controller-db-password", None, parent=self)
        self._controller_db_password = password
        # It holds the pageserver generation numbers: it must be durable.
        volume = self._volume("controller-db", DATA_PATH, 0)
        database = postgres_service(
            f"{self._name}-controller-db",
            PostgresArgs(
                hosts=hosts,
                image=self._image(DEFAULT_POSTGRES_IMAGE),
                alias=CONTROLLER_DB_ALIAS,
                user=CONTROLLER_DB_USER,
                database=CONTROLLER_DB,
                password=password,
                volume_name=volume.volume,
                component="neon-controller-db",
                memory_mb=self._settings.memory_mb,
                health_retries=12,
            ),
            host_index=0,
            parent=self,
        )
        notify = hosts.service(
            f"{self._name}-notify",
            ServiceSpec(
                alias=NOTIFY_ALIAS,
                component="neon-compute-notify",
                image=self._image(DEFAULT_NGINX_IMAGE),
                files=[ServiceFile("/etc/nginx/nginx.conf", render_notify_conf())],
                memory_mb=64 if self._settings.memory_mb else None,
                health=HealthCheck(
                    ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{NOTIFY_PORT}/notify-attach"]
                ),
            ),
            parent=self,
        )
        database_url = password.apply(
            lambda p: f"postgresql://{CONTROLLER_DB_USER}:{p}@{CONTROLLER_DB_ALIAS}:5432/{CONTROLLER_DB}"
        )
        return hosts.service(
            f"{self._name}-controller",
            ServiceSpec(
                alias=CONTROLLER_ALIAS,
                component="neon-storage-controller",
                image=self._image(self._settings.storage_image),
                # --dev: no JWT keys on this private network (strict mode needs an Ed25519 key
                # pair and three tokens); the hook URL is still set, so notifications reach
                # `notify`.
                command=controller_entrypoint(
                    [
                        "--dev",
                        f"--listen=0.0.0.0:{CONTROLLER_PORT}",
                        f"--control-plane-url=http://{NOTIFY_ALIAS}:{NOTIFY_PORT}",
                        "--max-offline-interval=10s",
                        # The default 5 s makes the controller exit when its database comes up
                        # later, as after a host reboot (storage_controller/src/main.rs,
                        # persistence.rs).
                        "--db-connect-timeout=120s",
                        "--heartbeat-interval=1s",
                    ]
                ),
                files=[ServiceFile(CONTROLLER_DB_URL_FILE, database_url, secret=True)],
                # Without leader election, two controllers on one database would both schedule
                # and both hand out pageserver generations.
                exclusive=True,
                memory_mb=self._settings.memory_mb,
                health=self._http_check(CONTROLLER_PORT, "/ready"),
            ),
            parent=self,
            depends_on=[database, notify],
        )
