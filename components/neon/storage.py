"""NeonStorage: Neon's storage tier on Docker, run with a storage controller.

MinIO (and its bucket) -> controller Postgres -> storage controller (+ its compute-notification
endpoint) -> storage broker -> pageserver -> safekeepers. Neon's own docker-compose runs the
pageserver in emergency mode without a controller, which its README says is not a usable
system (facts/neon.md §7); this tier runs the controller. Nothing here is published on 0.0.0.0:
the operator ports are on the hosts' loopback.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

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
    RemoteStorage,
    render_identity_toml,
    render_metadata_json,
    render_notify_conf,
    render_pageserver_toml,
    safekeeper_alias,
    safekeeper_command,
)
from components.neon.settings import NeonSettings
from components.platform.hosts import DockerHosts
from components.platform.jobs import OneShotJob, OneShotJobArgs
from components.platform.postgres import DATA_PATH, PostgresContainerArgs, postgres_container
from components.platform.probes import bash_http_probe
from components.platform.secrets import secret_or_generated
from components.platform.settings import DEFAULT_NGINX_IMAGE, DEFAULT_POSTGRES_IMAGE

LOOPBACK = "127.0.0.1"
MINIO_USER = "neon"
CONTROLLER_DB_ALIAS = "storage-controller-db"
CONTROLLER_DB = "storage_controller"
PAGESERVER_WORKDIR = "/data/.neon"


@dataclass(frozen=True)
class NeonStorageArgs:
    """Inputs of the storage tier."""

    settings: NeonSettings
    hosts: DockerHosts


class NeonStorage(pulumi.ComponentResource):
    """MinIO, storage controller, broker, pageserver and the safekeeper quorum."""

    controller_url: pulumi.Output[str]
    status_urls: pulumi.Output[dict]
    safekeeper_api_urls: list[str]
    pageserver: docker.Container
    safekeepers: list[docker.Container]
    controller: docker.Container

    def __init__(self, name: str, args: NeonStorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonStorage", name, None, opts)
        self._name = name
        settings, hosts = args.settings, args.hosts
        self._hosts = hosts
        self._settings = settings
        self._images: dict[tuple[int, str], docker.RemoteImage] = {}
        main_host = pulumi.ResourceOptions(parent=self, provider=hosts.providers[0])
        storage = RemoteStorage(bucket=settings.object_storage.bucket, region=settings.object_storage.region)

        minio_password = secret_or_generated(f"{name}-minio-password", None, parent=self)
        self.s3_envs = [
            f"AWS_ACCESS_KEY_ID={MINIO_USER}",
            minio_password.apply(lambda p: f"AWS_SECRET_ACCESS_KEY={p}"),
        ]
        minio, bucket = self._object_storage(minio_password, main_host)
        controller = self._controller(main_host)
        broker = docker.Container(
            f"{name}-broker",
            name=f"{hosts.prefix}-{BROKER_ALIAS}",
            image=self._image(0, settings.storage_image),
            command=["/usr/local/bin/storage_broker", f"--listen-addr=0.0.0.0:{BROKER_PORT}"],
            networks_advanced=hosts.attach(BROKER_ALIAS),
            restart="always",
            memory=settings.memory_mb,
            healthcheck=self._http_check(BROKER_PORT, "/status"),
            labels=hosts.labels("neon-storage-broker"),
            opts=main_host,
        )
        self.pageserver = docker.Container(
            f"{name}-pageserver",
            name=f"{hosts.prefix}-{PAGESERVER_ALIAS}",
            image=self._image(0, settings.storage_image),
            command=["/usr/local/bin/pageserver", "-D", PAGESERVER_WORKDIR],
            envs=self.s3_envs,
            uploads=[
                docker.ContainerUploadArgs(
                    file=f"{PAGESERVER_WORKDIR}/pageserver.toml",
                    content=render_pageserver_toml(storage),
                ),
                docker.ContainerUploadArgs(
                    file=f"{PAGESERVER_WORKDIR}/identity.toml", content=render_identity_toml()
                ),
                docker.ContainerUploadArgs(
                    file=f"{PAGESERVER_WORKDIR}/metadata.json",
                    content=render_metadata_json(),
                ),
            ],
            volumes=[self._volume("pageserver", "/data", 0)],
            ports=[
                docker.ContainerPortArgs(
                    internal=PAGESERVER_HTTP_PORT, external=PAGESERVER_HTTP_PORT, ip=LOOPBACK
                ),
                docker.ContainerPortArgs(
                    internal=PAGESERVER_PG_PORT, external=settings.pageserver_pg_port, ip=LOOPBACK
                ),
            ],
            networks_advanced=hosts.attach(PAGESERVER_ALIAS),
            restart="always",
            memory=settings.memory_mb,
            # The HTTP API starts only after re-attach with the controller has succeeded.
            healthcheck=self._http_check(PAGESERVER_HTTP_PORT, "/v1/status"),
            wait=True,
            wait_timeout=180,
            labels=hosts.labels("neon-pageserver"),
            opts=pulumi.ResourceOptions.merge(
                main_host,
                pulumi.ResourceOptions(
                    depends_on=[controller, broker, bucket, minio],
                    # Two pageservers on one bucket prefix in one generation is the split brain
                    # generations exist to prevent: never create the new one first.
                    delete_before_replace=True,
                ),
            ),
        )
        self.safekeepers = []
        for index, provider in enumerate(hosts.placement(settings.safekeepers)):
            host_index = hosts.providers.index(provider)
            http_port = settings.safekeeper_http_port
            self.safekeepers.append(
                docker.Container(
                    f"{name}-safekeeper-{index}",
                    name=f"{hosts.prefix}-{safekeeper_alias(index)}",
                    image=self._image(host_index, settings.storage_image),
                    command=safekeeper_command(index, storage, http_port),
                    envs=self.s3_envs,
                    volumes=[self._volume(f"safekeeper-{index}", "/data", host_index)],
                    ports=[
                        docker.ContainerPortArgs(internal=http_port, external=http_port + index, ip=LOOPBACK)
                    ],
                    networks_advanced=hosts.attach(safekeeper_alias(index)),
                    restart="always",
                    memory=settings.memory_mb,
                    healthcheck=self._http_check(http_port, "/v1/status"),
                    labels=hosts.labels("neon-safekeeper"),
                    opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[broker, bucket]),
                )
            )
        self.controller = controller

        # The controller is published on the first host's loopback. From another machine,
        # reach it through an SSH tunnel (README "Neon").
        local = hosts.reachable_host(0) == "localhost"
        self.controller_url = pulumi.Output.from_input(
            f"http://{'localhost' if local else LOOPBACK}:{CONTROLLER_PORT}"
        )
        # Each safekeeper's API on the loopback of its host (the same tunnel rule as the
        # controller): timeline deletion removes the timeline from every one of them.
        self.safekeeper_api_urls = [
            f"http://{'localhost' if local else LOOPBACK}:{settings.safekeeper_http_port + i}"
            for i in range(settings.safekeepers)
        ]
        self.status_urls = pulumi.Output.from_input(
            {
                "storageController": f"http://{LOOPBACK}:{CONTROLLER_PORT}/status",
                "pageserver": f"http://{LOOPBACK}:{PAGESERVER_HTTP_PORT}/v1/status",
                **{
                    f"safekeeper{i}": f"http://{LOOPBACK}:{settings.safekeeper_http_port + i}/v1/status"
                    for i in range(settings.safekeepers)
                },
            }
        )
        self.register_outputs({"controllerUrl": self.controller_url, "statusUrls": self.status_urls})

    # -- helpers ---------------------------------------------------------------------------

    def _image(self, host_index: int, ref: str) -> pulumi.Output[str]:
        key = (host_index, ref)
        if key not in self._images:
            opts = pulumi.ResourceOptions(parent=self, provider=self._hosts.providers[host_index])
            suffix = f"{ref.split('/')[-1].split(':')[0].split('@')[0]}-{host_index}"
            self._images[key] = self._hosts.pull(f"{self._name}-image-{suffix}", ref, opts)
        return self._images[key].image_id

    def _volume(self, what: str, path: str, host_index: int) -> docker.ContainerVolumeArgs:
        opts = pulumi.ResourceOptions(parent=self, provider=self._hosts.providers[host_index])
        volume = self._hosts.volume(f"{self._name}-{what}-data", f"neon-{what}-data", "neon", opts)
        return docker.ContainerVolumeArgs(volume_name=volume.name, container_path=path)

    def _http_check(self, port: int, path: str) -> docker.ContainerHealthcheckArgs:
        return docker.ContainerHealthcheckArgs(
            tests=bash_http_probe(port, path), interval="10s", timeout="5s", retries=6, start_period="30s"
        )

    def _object_storage(
        self, password: pulumi.Output[str], opts: pulumi.ResourceOptions
    ) -> tuple[docker.Container, OneShotJob]:
        settings, hosts = self._settings.object_storage, self._hosts
        minio_envs = [f"MINIO_ROOT_USER={MINIO_USER}", password.apply(lambda p: f"MINIO_ROOT_PASSWORD={p}")]
        minio = docker.Container(
            f"{self._name}-minio",
            name=f"{hosts.prefix}-{MINIO_ALIAS}",
            image=self._image(0, settings.image),
            command=["server", "/data", "--address", f":{MINIO_PORT}", "--console-address", ":9001"],
            envs=minio_envs,
            volumes=[self._volume("minio", "/data", 0)],
            networks_advanced=hosts.attach(MINIO_ALIAS),
            restart="always",
            memory=self._settings.memory_mb,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "mc", "ready", "local"], interval="5s", timeout="5s", retries=12
            ),
            wait=True,
            wait_timeout=120,
            labels=hosts.labels("neon-object-storage"),
            opts=opts,
        )
        script = (
            f'mc alias set neon http://{MINIO_ALIAS}:{MINIO_PORT} "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" '
            f"&& mc mb --ignore-existing neon/{settings.bucket} --region={settings.region}"
        )
        # Pulumi waits for it, so the pageserver never starts before the bucket; a bucket that
        # cannot be made fails `pulumi up`.
        bucket = OneShotJob(
            f"{self._name}-bucket",
            OneShotJobArgs(
                hosts=hosts,
                image=self._image(0, settings.mc_image),
                script=script,
                env={"MINIO_ROOT_USER": MINIO_USER, "MINIO_ROOT_PASSWORD": password},
                attempts=5,
                component="minio-bucket",
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[minio]),
        )
        return minio, bucket

    def _controller(self, opts: pulumi.ResourceOptions) -> docker.Container:
        hosts = self._hosts
        password = secret_or_generated(f"{self._name}-controller-db-password", None, parent=self)
        # It holds the pageserver generation numbers: it must be durable.
        volume = self._volume("controller-db", DATA_PATH, 0)
        database = postgres_container(
            f"{self._name}-controller-db",
            PostgresContainerArgs(
                hosts=hosts,
                image=self._image(0, DEFAULT_POSTGRES_IMAGE),
                alias=CONTROLLER_DB_ALIAS,
                user="storage_controller",
                database=CONTROLLER_DB,
                password=password,
                volume_name=volume.volume_name,
                component="neon-controller-db",
                memory_mb=self._settings.memory_mb,
                health_retries=12,
            ),
            opts,
        )
        notify = docker.Container(
            f"{self._name}-notify",
            name=f"{hosts.prefix}-{NOTIFY_ALIAS}",
            image=self._image(0, DEFAULT_NGINX_IMAGE),
            uploads=[docker.ContainerUploadArgs(file="/etc/nginx/nginx.conf", content=render_notify_conf())],
            networks_advanced=hosts.attach(NOTIFY_ALIAS),
            restart="always",
            memory=64 if self._settings.memory_mb else None,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=[
                    "CMD",
                    "wget",
                    "-q",
                    "-O",
                    "/dev/null",
                    f"http://127.0.0.1:{NOTIFY_PORT}/notify-attach",
                ],
                interval="10s",
                timeout="5s",
                retries=3,
            ),
            labels=hosts.labels("neon-compute-notify"),
            opts=opts,
        )
        database_url = password.apply(
            lambda p: (
                f"DATABASE_URL=postgresql://storage_controller:{p}@{CONTROLLER_DB_ALIAS}:5432/{CONTROLLER_DB}"
            )
        )
        return docker.Container(
            f"{self._name}-controller",
            name=f"{hosts.prefix}-{CONTROLLER_ALIAS}",
            image=self._image(0, self._settings.storage_image),
            # --dev: no JWT keys on this private network (strict mode needs an Ed25519 key pair
            # and three tokens); the hook URL is still set, so notifications reach `notify`.
            command=[
                "/usr/local/bin/storage_controller",
                "--dev",
                f"--listen=0.0.0.0:{CONTROLLER_PORT}",
                f"--control-plane-url=http://{NOTIFY_ALIAS}:{NOTIFY_PORT}",
                "--max-offline-interval=10s",
                # The default 5 s makes the controller exit when its database comes up later,
                # as after a host reboot (storage_controller/src/main.rs, persistence.rs).
                "--db-connect-timeout=120s",
                "--heartbeat-interval=1s",
            ],
            envs=[database_url],
            ports=[docker.ContainerPortArgs(internal=CONTROLLER_PORT, external=CONTROLLER_PORT, ip=LOOPBACK)],
            networks_advanced=hosts.attach(CONTROLLER_ALIAS),
            restart="always",
            memory=self._settings.memory_mb,
            healthcheck=self._http_check(CONTROLLER_PORT, "/ready"),
            wait=True,
            wait_timeout=120,
            labels=hosts.labels("neon-storage-controller"),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[database, notify])),
        )
