"""KongGateway: Kong 3 in front of the RAG services, DB-less by default or with its Postgres."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.kong.config import render_kong_config
from components.kong.settings import KongSettings
from components.platform.hosts import DockerHosts
from components.platform.jobs import OneShotJob, OneShotJobArgs
from components.platform.postgres import PostgresContainerArgs, postgres_container
from components.platform.secrets import secret_or_generated

PROXY_PORT = 8000
ADMIN_PORT = 8001
MANAGER_PORT = 8002
STATUS_PORT = 8100  # the Kong Helm chart's status port; Kong's own default is 8007
CONFIG_PATH = "/kong/kong.yml"
IMPORT_PATH = "/usr/local/kong/declarative.yml"  # the job writes it in KONG_PREFIX, the kong user's
LOOPBACK = "127.0.0.1"
KONG_ALIAS = "kong"
DB_ALIAS = "kong-db"


@dataclass(frozen=True)
class KongGatewayArgs:
    """Inputs of the gateway tier."""

    settings: KongSettings
    hosts: DockerHosts
    jwt_secret: pulumi.Output[str] | None
    """Configured `kongJwtSecret`; generated when None."""


def _listen_envs(settings: KongSettings) -> list[str]:
    # Inside the container the listeners bind all interfaces so Docker can publish them;
    # the admin, status and manager ports are published on the host's loopback only.
    envs = [
        f"KONG_PROXY_LISTEN=0.0.0.0:{PROXY_PORT}",
        f"KONG_ADMIN_LISTEN=0.0.0.0:{ADMIN_PORT}",
        f"KONG_STATUS_LISTEN=0.0.0.0:{STATUS_PORT}",
        "KONG_PROXY_ACCESS_LOG=/dev/stdout",
        "KONG_PROXY_ERROR_LOG=/dev/stderr",
        "KONG_ADMIN_ACCESS_LOG=/dev/stdout",
        "KONG_ADMIN_ERROR_LOG=/dev/stderr",
        "KONG_PLUGINS=bundled",
    ]
    if settings.manager:
        envs += [
            f"KONG_ADMIN_GUI_LISTEN=0.0.0.0:{MANAGER_PORT}",
            f"KONG_ADMIN_GUI_URL=http://localhost:{settings.manager_port}",
            f"KONG_ADMIN_GUI_API_URL=http://localhost:{settings.admin_port}",
        ]
    else:
        envs.append("KONG_ADMIN_GUI_LISTEN=off")
    return envs


def _ports(settings: KongSettings) -> list[docker.ContainerPortArgs]:
    ports = [
        docker.ContainerPortArgs(internal=PROXY_PORT, external=settings.proxy_port),
        docker.ContainerPortArgs(internal=ADMIN_PORT, external=settings.admin_port, ip=LOOPBACK),
        docker.ContainerPortArgs(internal=STATUS_PORT, external=settings.status_port, ip=LOOPBACK),
    ]
    if settings.manager:
        ports.append(
            docker.ContainerPortArgs(internal=MANAGER_PORT, external=settings.manager_port, ip=LOOPBACK)
        )
    return ports


class KongGateway(pulumi.ComponentResource):
    """Kong with the rag-search and rag-query routes, JWT, rate limiting and CORS."""

    proxy_url: pulumi.Output[str]
    internal_url: pulumi.Output[str]
    admin_url: pulumi.Output[str]
    jwt_secret: pulumi.Output[str]
    credentials: pulumi.Output[str]

    def __init__(self, name: str, args: KongGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:KongGateway", name, None, opts)
        settings, hosts = args.settings, args.hosts
        provider = hosts.providers[0]
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.jwt_secret = secret_or_generated(f"{name}-jwt-secret", args.jwt_secret, parent=self, length=48)

        # The rendered file holds the JWT secret, so it is a secret Output end to end.
        declarative = pulumi.Output.secret(
            self.jwt_secret.apply(
                lambda secret: render_kong_config(
                    settings.routes, settings.rate_limit, settings.cors, settings.consumers, secret
                )
            )
        )
        upload = [docker.ContainerUploadArgs(file=CONFIG_PATH, content=declarative)]
        image = hosts.pull(f"{name}-image", settings.image, child)

        envs: list[pulumi.Input[str]] = _listen_envs(settings)
        depends_on: list[pulumi.Resource] = []
        if settings.database == "off":
            envs += ["KONG_DATABASE=off", f"KONG_DECLARATIVE_CONFIG={CONFIG_PATH}"]
        else:
            db_password = secret_or_generated(f"{name}-db-password", None, parent=self)
            pg_envs = [
                "KONG_DATABASE=postgres",
                f"KONG_PG_HOST={DB_ALIAS}",
                "KONG_PG_USER=kong",
                "KONG_PG_DATABASE=kong",
                db_password.apply(lambda p: f"KONG_PG_PASSWORD={p}"),
            ]
            envs += pg_envs
            pg_env = {
                "KONG_DATABASE": "postgres",
                "KONG_PG_HOST": DB_ALIAS,
                "KONG_PG_USER": "kong",
                "KONG_PG_DATABASE": "kong",
                "KONG_PG_PASSWORD": db_password,
            }
            depends_on.append(
                self._database(name, settings, hosts, child, db_password, image, pg_env, declarative)
            )

        self.kong = docker.Container(
            f"{name}-kong",
            name=f"{hosts.prefix}-{KONG_ALIAS}",
            image=image.image_id,
            envs=envs,
            uploads=upload,
            ports=_ports(settings),
            networks_advanced=hosts.attach(KONG_ALIAS),
            restart="always",
            memory=settings.memory_mb,
            # The image has no curl; `kong health` checks the nginx master under KONG_PREFIX.
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "kong", "health"], interval="10s", timeout="10s", retries=10, start_period="20s"
            ),
            labels=hosts.labels("kong"),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=depends_on),
        )

        public_host = hosts.reachable_host(0)
        self.proxy_url = pulumi.Output.from_input(f"http://{public_host}:{settings.proxy_port}")
        self.internal_url = pulumi.Output.from_input(f"http://{KONG_ALIAS}:{PROXY_PORT}")
        # Loopback of the Docker host: reach it there, or through an SSH tunnel.
        self.admin_url = pulumi.Output.from_input(f"http://{LOOPBACK}:{settings.admin_port}")
        self.credentials = pulumi.Output.secret(
            pulumi.Output.all(self.proxy_url, self.jwt_secret).apply(
                lambda values: json.dumps(
                    {
                        "proxyUrl": values[0],
                        "consumers": [
                            {"username": c.username, "key": c.key, "secret": values[1]}
                            for c in settings.consumers
                        ],
                    }
                )
            )
        )
        self.register_outputs(
            {
                "proxyUrl": self.proxy_url,
                "internalUrl": self.internal_url,
                "adminUrl": self.admin_url,
                "credentials": self.credentials,
            }
        )

    def _database(
        self,
        name: str,
        settings: KongSettings,
        hosts: DockerHosts,
        child: pulumi.ResourceOptions,
        password: pulumi.Output[str],
        kong_image: docker.RemoteImage,
        pg_env: dict[str, pulumi.Input[str]],
        declarative: pulumi.Output[str],
    ) -> OneShotJob:
        """The plan's kong-db and one-shot migrations; returns the job Kong waits for."""
        db_image = hosts.pull(f"{name}-db-image", settings.db_image, child)
        volume = hosts.volume(f"{name}-db-data", "kong-db-data", "kong-db", child)
        database = postgres_container(
            f"{name}-db",
            PostgresContainerArgs(
                hosts=hosts,
                image=db_image.image_id,
                alias=DB_ALIAS,
                user="kong",
                database="kong",
                password=password,
                volume_name=volume.name,
                component="kong-db",
                memory_mb=settings.memory_mb,
                health_retries=10,
            ),
            child,
        )
        # bootstrap is idempotent; up/finish apply a new Kong version's migrations; then the
        # rendered file is imported. It holds the consumers' JWT secret, so it travels with the
        # job's (secret) environment, base64 on one line, and is written inside the container.
        script = (
            f'printf %s "$KONG_DECLARATIVE_B64" | base64 -d > {IMPORT_PATH} '
            "&& kong migrations bootstrap && kong migrations up && kong migrations finish "
            f"&& kong config db_import {IMPORT_PATH}"
        )
        encoded = declarative.apply(lambda text: base64.b64encode(text.encode()).decode())
        return OneShotJob(
            f"{name}-migrations",
            OneShotJobArgs(
                hosts=hosts,
                image=kong_image.image_id,
                script=script,
                env={**pg_env, "KONG_DECLARATIVE_B64": encoded},
                attempts=5,
                component="kong-migrations",
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[database]),
        )
