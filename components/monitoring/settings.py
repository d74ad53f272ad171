"""Settings of the monitoring tier (`rag-infra:monitoring`): Prometheus, Alertmanager and Grafana,
their images, retention and the loopback ports operators reach them on."""

from typing import Self

from pydantic import model_validator

from components.platform.settings import IMAGE, PORT, ConfigModel, text, unique_ports, whole

# The official images, pinned (the v3.5 line is Prometheus's long-term support release).
DEFAULT_PROMETHEUS_IMAGE = "prom/prometheus:v3.5.5"
DEFAULT_ALERTMANAGER_IMAGE = "prom/alertmanager:v0.33.1"
DEFAULT_GRAFANA_IMAGE = "grafana/grafana:12.1.1"

# Prometheus's duration syntax (model/time ParseDuration), one or more units, e.g. 15d or 1w2d.
_DURATION = r"(\d+(y|w|d|h|m|s|ms))+"


class MonitoringSettings(ConfigModel):
    """What `features.monitoring` deploys (components/monitoring/monitoring.py)."""

    prometheus_image: IMAGE = DEFAULT_PROMETHEUS_IMAGE
    alertmanager_image: IMAGE = DEFAULT_ALERTMANAGER_IMAGE
    grafana_image: IMAGE = DEFAULT_GRAFANA_IMAGE
    retention: text(_DURATION, "a Prometheus duration such as 15d or 2w") = "15d"
    """How long Prometheus keeps samples (`--storage.tsdb.retention.time`)."""
    scrape_interval: text(_DURATION, "a Prometheus duration such as 15s") = "15s"
    prometheus_port: PORT = 9090
    """Prometheus's UI and API on the first host's loopback (OperatorAccess)."""
    alertmanager_port: PORT = 9093
    grafana_port: PORT = 3000
    memory_mb: whole(256) = 1024
    """Prometheus's memory limit; Alertmanager and Grafana run in 256 MB each."""

    @model_validator(mode="after")
    def _ports_unique(self) -> Self:
        unique_ports(
            {
                "prometheusPort": self.prometheus_port,
                "alertmanagerPort": self.alertmanager_port,
                "grafanaPort": self.grafana_port,
            }
        )
        return self
