"""Monitoring: Prometheus scraping every service of the stack, Alertmanager, Grafana.

- **Prometheus** (the official image) runs pinned to the first host with its data on a named
  volume, retention from config. Its config (`scrape.py`) has a job per kind of service, each
  target labelled with its tier and member; the alert rules (`rules.py`) are the plan's
  success criteria and the HA invariants. A token a target wants (Qdrant's API key) is a
  Swarm secret mounted as a file the job names: never text in the config.
- **Alertmanager** beside it (its silences on a volume) sends every alert to the webhook of
  the secret `alertWebhookUrl`, or, with none, keeps them in its UI.
- **Grafana** with Prometheus as its datasource and the dashboards of
  `components/monitoring/dashboards/`, provisioned read-only; its admin password is generated
  (a Swarm secret, the output `grafanaAdminPassword`). It keeps nothing worth a volume: every
  start provisions the same datasource and dashboards.

None of the three publishes a port: OperatorAccess forwards them to the first host's loopback
(`operator_forwards`), as it does the admin APIs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pulumi

from components.monitoring.config import (
    dashboards,
    render_alertmanager_yml,
    render_grafana_dashboard_provider,
    render_grafana_datasources,
)
from components.monitoring.rules import AlertTargets, render_alert_rules
from components.monitoring.scrape import RULES_PATH, ScrapeJob, ScrapeTarget, render_prometheus_yml
from components.monitoring.settings import MonitoringSettings
from components.platform.hosts import DockerHosts
from components.platform.operator_access import LOOPBACK, Forward
from components.platform.secrets import secret_or_generated
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec, SwarmService

PROMETHEUS_ALIAS = "prometheus"
PROMETHEUS_PORT = 9090
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
PROMETHEUS_DATA = "/prometheus"
ALERTMANAGER_ALIAS = "alertmanager"
ALERTMANAGER_PORT = 9093
ALERTMANAGER_CONFIG = "/etc/alertmanager/alertmanager.yml"
ALERTMANAGER_DATA = "/alertmanager"
WEBHOOK_URL_FILE = "/run/secrets/alertmanager-webhook-url"
GRAFANA_ALIAS = "grafana"
GRAFANA_PORT = 3000
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS = "/etc/grafana/dashboards"
GRAFANA_PASSWORD_FILE = "/run/secrets/grafana-admin-password"  # noqa: S105 (a path)
SMALL_MEMORY_MB = 256


@dataclass(frozen=True)
class MonitoringArgs:
    """What is scraped and alerted on, and with which secrets."""

    settings: MonitoringSettings
    hosts: DockerHosts
    stack: str
    jobs: Sequence[ScrapeJob]
    """The tiers' scrape jobs (components/scrape_targets.py); the tier's own are added."""
    alert_targets: AlertTargets
    credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret files the jobs read (`ScrapeJob.bearer_file` path -> content)."""
    webhook_url: pulumi.Output[str] | None = None
    """The configured `alertWebhookUrl`; None keeps alerts in Alertmanager's UI."""


def own_jobs() -> list[ScrapeJob]:
    """The tier's own services, scraped like the others (a stopped Alertmanager or Grafana is
    seen by the restart-loop rule and on the overview dashboard)."""

    def job(alias: str, port: int) -> ScrapeJob:
        host = "localhost" if alias == PROMETHEUS_ALIAS else alias
        return ScrapeJob(alias, "monitoring", targets=[ScrapeTarget(f"{host}:{port}", alias)])

    return [
        job(PROMETHEUS_ALIAS, PROMETHEUS_PORT),
        job(ALERTMANAGER_ALIAS, ALERTMANAGER_PORT),
        job(GRAFANA_ALIAS, GRAFANA_PORT),
    ]


def operator_forwards(settings: MonitoringSettings) -> list[Forward]:
    """Prometheus, Alertmanager and Grafana on the first host's loopback."""
    return [
        Forward(settings.prometheus_port, PROMETHEUS_ALIAS, PROMETHEUS_PORT, "Prometheus"),
        Forward(settings.alertmanager_port, ALERTMANAGER_ALIAS, ALERTMANAGER_PORT, "Alertmanager"),
        Forward(settings.grafana_port, GRAFANA_ALIAS, GRAFANA_PORT, "Grafana"),
    ]


def _ready(port: int, path: str) -> HealthCheck:
    # The Prometheus and Alertmanager images are busybox (wget); Grafana's is Alpine (wget too).
    return HealthCheck(
        ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}{path}"],
        retries=6,
        start_period="60s",
    )


class Monitoring(pulumi.ComponentResource):
    """The monitoring tier: Prometheus, Alertmanager and Grafana on the stack network."""

    prometheus_url: pulumi.Output[str]
    alertmanager_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:Monitoring", name, None, opts)
        settings, hosts = args.settings, args.hosts
        missing = sorted({job.bearer_file for job in args.jobs if job.bearer_file} - set(args.credentials))
        if missing:
            raise ValueError(f"scrape jobs read credential files nobody provides: {', '.join(missing)}")

        prometheus_yml = render_prometheus_yml(
            [*args.jobs, *own_jobs()],
            args.stack,
            alertmanagers=[f"{ALERTMANAGER_ALIAS}:{ALERTMANAGER_PORT}"],
            scrape_interval=settings.scrape_interval,
        )
        self.prometheus = self._with_data(
            f"{name}-prometheus",
            args,
            ServiceSpec(
                alias=PROMETHEUS_ALIAS,
                component="prometheus",
                image=hosts.image_ref(f"{name}-prometheus-image", settings.prometheus_image, self),
                # The image's CMD, with the retention added.
                args=[
                    f"--config.file={PROMETHEUS_CONFIG}",
                    f"--storage.tsdb.path={PROMETHEUS_DATA}",
                    f"--storage.tsdb.retention.time={settings.retention}",
                ],
                files=[
                    ServiceFile(PROMETHEUS_CONFIG, prometheus_yml),
                    ServiceFile(RULES_PATH, render_alert_rules(args.alert_targets)),
                    *(ServiceFile(path, content, secret=True) for path, content in args.credentials.items()),
                ],
                memory_mb=settings.memory_mb,
                health=_ready(PROMETHEUS_PORT, "/-/ready"),
            ),
            PROMETHEUS_DATA,
        )

        webhook = args.webhook_url
        alertmanager_yml = render_alertmanager_yml(WEBHOOK_URL_FILE if webhook else None)
        self.alertmanager = self._with_data(
            f"{name}-alertmanager",
            args,
            ServiceSpec(
                alias=ALERTMANAGER_ALIAS,
                component="alertmanager",
                image=hosts.image_ref(f"{name}-alertmanager-image", settings.alertmanager_image, self),
                # One Alertmanager: no gossip cluster to listen for (an empty address turns it off).
                args=[
                    f"--config.file={ALERTMANAGER_CONFIG}",
                    f"--storage.path={ALERTMANAGER_DATA}",
                    "--cluster.listen-address=",
                ],
                files=[
                    ServiceFile(ALERTMANAGER_CONFIG, alertmanager_yml),
                    *([ServiceFile(WEBHOOK_URL_FILE, webhook, secret=True)] if webhook else []),
                ],
                memory_mb=SMALL_MEMORY_MB,
                health=_ready(ALERTMANAGER_PORT, "/-/ready"),
            ),
            ALERTMANAGER_DATA,
        )

        self.grafana_admin_password = secret_or_generated(f"{name}-grafana-admin-password", None, parent=self)
        boards = [ServiceFile(f"{GRAFANA_DASHBOARDS}/{file}", text) for file, text in dashboards().items()]
        self.grafana = hosts.service(
            f"{name}-grafana",
            ServiceSpec(
                alias=GRAFANA_ALIAS,
                component="grafana",
                image=hosts.image_ref(f"{name}-grafana-image", settings.grafana_image, self),
                env={
                    # The image's run.sh reads GF_<option>__FILE into the option at start.
                    "GF_SECURITY_ADMIN_PASSWORD__FILE": GRAFANA_PASSWORD_FILE,
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                    "GF_ANALYTICS_REPORTING_ENABLED": "false",
                    "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
                },
                files=[
                    ServiceFile(GRAFANA_PASSWORD_FILE, self.grafana_admin_password, secret=True),
                    ServiceFile(
                        f"{GRAFANA_PROVISIONING}/datasources/prometheus.yaml",
                        render_grafana_datasources(f"http://{PROMETHEUS_ALIAS}:{PROMETHEUS_PORT}"),
                    ),
                    ServiceFile(
                        f"{GRAFANA_PROVISIONING}/dashboards/rag-infra.yaml",
                        render_grafana_dashboard_provider(GRAFANA_DASHBOARDS),
                    ),
                    *boards,
                ],
                memory_mb=SMALL_MEMORY_MB * 2,
                health=_ready(GRAFANA_PORT, "/api/health"),
            ),
            parent=self,
        )

        self.operator_forwards = operator_forwards(settings)
        self.prometheus_url = pulumi.Output.from_input(f"http://{LOOPBACK}:{settings.prometheus_port}")
        self.alertmanager_url = pulumi.Output.from_input(f"http://{LOOPBACK}:{settings.alertmanager_port}")
        self.grafana_url = pulumi.Output.from_input(f"http://{LOOPBACK}:{settings.grafana_port}")
        self.register_outputs(
            {
                "prometheusUrl": self.prometheus_url,
                "alertmanagerUrl": self.alertmanager_url,
                "grafanaUrl": self.grafana_url,
                "grafanaAdminPassword": self.grafana_admin_password,
            }
        )

    def _with_data(self, name: str, args: MonitoringArgs, spec: ServiceSpec, data_path: str) -> SwarmService:
        """`spec` pinned to the first host with a named volume `<alias>-data` at `data_path`
        (the official images run as nobody and own that path, which a new volume copies)."""
        hosts = args.hosts
        volume = hosts.volume(
            f"{name}-data",
            f"{spec.alias}-data",
            spec.component,
            pulumi.ResourceOptions(parent=self, provider=hosts.providers[0]),
        )
        pinned = replace(spec, mounts=[Mount(volume.name, data_path)], pinned_to=0)
        return hosts.service(name, pinned, parent=self)
