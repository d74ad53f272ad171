"""KongGateway: Kong 3 in front of the RAG services, DB-less by default or with its Postgres."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi

from components.kong.config import render_kong_config
from components.kong.settings import KongSettings
from components.monitoring.scrape import ScrapeJob
from components.platform.hosts import DockerHosts
from components.platform.jobs import OneShotJob, OneShotJobArgs
from components.platform.operator_access import LOOPBACK, Forward
from components.platform.postgres import PostgresArgs, postgres_service
from components.platform.secrets import secret_or_generated
from components.platform.service import HealthCheck, ServiceFile, ServiceSpec
from components.platform.tls import TlsMaterial

PROXY_PORT = 8000
PROXY_TLS_PORT = 8443
"""Kong's TLS proxy listener (its default proxy_listen has it too): the published one with TLS."""
TLS_CERT_PATH = "/etc/kong/tls/certificate.pem"
TLS_KEY_PATH = "/run/secrets/kong-tls-key.pem"
ADMIN_PORT = 8001
MANAGER_PORT = 8002
STATUS_PORT = 8100  # the Kong Helm chart's status port; Kong's own default is 8007
CONFIG_PATH = "/run/secrets/kong.yml"
"""The declarative file, a Swarm secret (it holds the consumers' JWT secret)."""
PG_PASSWORD_FILE = "/run/secrets/kong-pg-password"  # noqa: S105 (a path)
IMPORT_PATH = "/usr/local/kong/declarative.yml"  # the job writes it in KONG_PREFIX, the kong user's
KONG_ALIAS = "kong"
DB_ALIAS = "kong-db"


@dataclass(frozen=True)
class KongGatewayArgs:
    """Inputs of the gateway tier."""

    settings: KongSettings
    hosts: DockerHosts
    jwt_secret: pulumi.Output[str] | None
    """Configured `kongJwtSecret`; generated when None."""
    tls: TlsMaterial | None = None
    """The public listeners' certificate: the proxy is then published on its TLS listener only."""


def _listen_env(settings: KongSettings, tls: bool) -> dict[str, str]:
    # Inside the container every listener binds all interfaces; only the proxy is published.
    # The admin, status and manager ports reach the manager's loopback through OperatorAccess
    # (components/platform/operator_access.py): Swarm cannot publish on loopback. With TLS the
    # plaintext proxy stays for the stack's own network (appEnv's internal URL).
    proxy = f"0.0.0.0:{PROXY_PORT}" + (f", 0.0.0.0:{PROXY_TLS_PORT} ssl" if tls else "")
    env = {
        "KONG_PROXY_LISTEN": proxy,
        "KONG_ADMIN_LISTEN": f"0.0.0.0:{ADMIN_PORT}",
        "KONG_STATUS_LISTEN": f"0.0.0.0:{STATUS_PORT}",
        "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
        "KONG_PROXY_ERROR_LOG": "/dev/stderr",
        "KONG_ADMIN_ACCESS_LOG": "/dev/stdout",
        "KONG_ADMIN_ERROR_LOG": "/dev/stderr",
        "KONG_PLUGINS": "bundled",
    }
    if settings.manager:
        env |= {
            "KONG_ADMIN_GUI_LISTEN": f"0.0.0.0:{MANAGER_PORT}",
            "KONG_ADMIN_GUI_URL": f"http://localhost:{settings.manager_port}",
            "KONG_ADMIN_GUI_API_URL": f"http://localhost:{settings.admin_port}",
        }
    else:
        env["KONG_ADMIN_GUI_LISTEN"] = "off"
    if tls:
        # ssl_cert and ssl_cert_key take a path or the PEM itself (kong/conf_loader); the key
        # comes through docker-kong's file_env (KONG_<option>_FILE, read at start), as the
        # Postgres password does.
        env |= {"KONG_SSL_CERT": TLS_CERT_PATH, "KONG_SSL_CERT_KEY_FILE": TLS_KEY_PATH}
    return env


def operator_forwards(settings: KongSettings) -> list[Forward]:
    """Kong's admin, status and (when on) Manager ports, as OperatorAccess forwards them."""
    forwards = [
        Forward(settings.admin_port, KONG_ALIAS, ADMIN_PORT, "Kong admin API"),
        Forward(settings.status_port, KONG_ALIAS, STATUS_PORT, "Kong status listener"),
    ]
    if settings.manager:
        forwards.append(Forward(settings.manager_port, KONG_ALIAS, MANAGER_PORT, "Kong Manager"))
    return forwards


def scrape_jobs() -> list[ScrapeJob]:
    """Every Kong task's status listener, where the prometheus plugin (kong.yml) serves /metrics."""
    return [ScrapeJob("kong", "kong", dns_name=KONG_ALIAS, port=STATUS_PORT)]


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
        self.jwt_secret = secret_or_generated(f"{name}-jwt-secret", args.jwt_secret, parent=self, length=48)

        # The rendered file holds the JWT secret, so it is a secret Output end to end.
        declarative = pulumi.Output.secret(
            self.jwt_secret.apply(
                lambda secret: render_kong_config(
                    settings.routes, settings.rate_limit, settings.cors, settings.consumers, secret
                )
            )
        )
        image = hosts.image_ref(f"{name}-image", settings.image, self)

        tls = args.tls
        env = _listen_env(settings, tls=tls is not None)
        files = [ServiceFile(CONFIG_PATH, declarative, secret=True)]
        if tls:
            files += [
                ServiceFile(TLS_CERT_PATH, tls.certificate),
                ServiceFile(TLS_KEY_PATH, tls.private_key, secret=True),
            ]
        depends_on: list[pulumi.Resource] = []
        if settings.database == "off":
            env |= {"KONG_DATABASE": "off", "KONG_DECLARATIVE_CONFIG": CONFIG_PATH}
        else:
            db_password = secret_or_generated(f"{name}-db-password", None, parent=self)
            pg = {
                "KONG_DATABASE": "postgres",
                "KONG_PG_HOST": DB_ALIAS,
                "KONG_PG_USER": "kong",
                "KONG_PG_DATABASE": "kong",
            }
            # docker-kong's entrypoint reads KONG_<option>_FILE for every option (file_env).
            env |= {**pg, "KONG_PG_PASSWORD_FILE": PG_PASSWORD_FILE}
            files.append(ServiceFile(PG_PASSWORD_FILE, db_password, secret=True))
            depends_on.append(
                self._database(
                    name,
                    settings,
                    hosts,
                    db_password,
                    image,
                    {**pg, "KONG_PG_PASSWORD": db_password},
                    declarative,
                )
            )

        self.kong = hosts.service(
            f"{name}-kong",
            ServiceSpec(
                alias=KONG_ALIAS,
                component="kong",
                image=image,
                env=env,
                files=files,
                # One task per host (at most one per node), the proxy published in host mode.
                replicas=settings.replicas or hosts.host_count,
                ports={PROXY_TLS_PORT if tls else PROXY_PORT: settings.proxy_port},
                memory_mb=settings.memory_mb,
                # The image has no curl; `kong health` checks the nginx master under KONG_PREFIX.
                health=HealthCheck(["CMD", "kong", "health"], timeout="10s", retries=10, start_period="20s"),
            ),
            parent=self,
            depends_on=depends_on,
        )
        self.operator_forwards = operator_forwards(settings)

        self.proxy_urls = hosts.public_urls(settings.proxy_port, "https" if tls else "http")
        self.proxy_url = self.proxy_urls[0]
        self.internal_url = pulumi.Output.from_input(f"http://{KONG_ALIAS}:{PROXY_PORT}")
        # Loopback of the first host (OperatorAccess): reach it there, or through an SSH tunnel.
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
                "proxyUrls": self.proxy_urls,
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
        password: pulumi.Output[str],
        kong_image: pulumi.Input[str],
        pg_env: dict[str, pulumi.Input[str]],
        declarative: pulumi.Output[str],
    ) -> OneShotJob:
        """The plan's kong-db and one-shot migrations; returns the job Kong waits for."""
        # The database stays on the first host, with its volume.
        volume = hosts.volume(
            f"{name}-db-data",
            "kong-db-data",
            "kong-db",
            pulumi.ResourceOptions(parent=self, provider=hosts.providers[0]),
        )
        database = postgres_service(
            f"{name}-db",
            PostgresArgs(
                hosts=hosts,
                image=hosts.image_ref(f"{name}-db-image", settings.db_image, self),
                alias=DB_ALIAS,
                user="kong",
                database="kong",
                password=password,
                volume_name=volume.name,
                component="kong-db",
                memory_mb=settings.memory_mb,
                health_retries=10,
            ),
            host_index=0,
            parent=self,
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
                image=kong_image,
                script=script,
                env={**pg_env, "KONG_DECLARATIVE_B64": encoded},
                attempts=5,
                component="kong-migrations",
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[database]),
        )
