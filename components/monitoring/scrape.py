"""Pure renderer of prometheus.yml: one scrape job per kind of service, every target labelled
with its tier and member.

A job lists its targets by name (a quorum member: each its own alias) or discovers the tasks of
a replicated service through Docker's DNS (`dns_sd_configs`: a dnsrr service name resolves to
every task's address), so each task is its own target. Credentials are files (a Swarm secret
mounted in the Prometheus task), read by Prometheus at every scrape
(`authorization.credentials_file`), never text in the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml

RULES_PATH = "/etc/prometheus/rules.yml"


@dataclass(frozen=True)
class ScrapeTarget:
    """One member: `host:port` on the stack network, and the name it goes by."""

    address: str
    member: str


@dataclass(frozen=True)
class ScrapeJob:
    """The targets of one kind of service."""

    name: str
    tier: str
    targets: Sequence[ScrapeTarget] = ()
    dns_name: str | None = None
    """Discover every task of this service name instead (with `port`)."""
    port: int | None = None
    metrics_path: str = "/metrics"
    bearer_file: str | None = None
    """A file holding the token sent as `Authorization: Bearer` (Qdrant takes its API key so)."""


def _job(job: ScrapeJob) -> dict:
    if bool(job.targets) == bool(job.dns_name):
        raise ValueError(f"scrape job {job.name}: give either targets or a DNS name to discover")
    config: dict = {"job_name": job.name, "metrics_path": job.metrics_path}
    if job.bearer_file:
        config["authorization"] = {"type": "Bearer", "credentials_file": job.bearer_file}
    if job.targets:
        config["static_configs"] = [
            {"targets": [t.address], "labels": {"tier": job.tier, "member": t.member}} for t in job.targets
        ]
    else:
        if job.port is None:
            raise ValueError(f"scrape job {job.name}: discovering {job.dns_name} needs a port")
        config["dns_sd_configs"] = [
            {"names": [job.dns_name], "type": "A", "port": job.port, "refresh_interval": "30s"}
        ]
        # Each task is a member, named by its address (tasks come and go with updates).
        config["relabel_configs"] = [
            {"target_label": "tier", "replacement": job.tier},
            {"source_labels": ["__address__"], "target_label": "member"},
        ]
    return config


def render_prometheus_yml(
    jobs: Sequence[ScrapeJob],
    stack: str,
    alertmanagers: Sequence[str] = (),
    rule_files: Sequence[str] = (RULES_PATH,),
    scrape_interval: str = "15s",
) -> str:
    """prometheus.yml: the jobs, the rule files and where alerts go."""
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"scrape jobs named twice: {sorted({n for n in names if names.count(n) > 1})}")
    config: dict = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "external_labels": {"stack": stack},
        },
        "rule_files": list(rule_files),
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    config["scrape_configs"] = [_job(job) for job in jobs]
    return (
        "# Rendered by rag-infra (components/monitoring/scrape.py). Do not edit by hand.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
