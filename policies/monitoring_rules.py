"""Every long-running service of the stack is a Prometheus scrape target, read from the
prometheus.yml the Prometheus service mounts: a service whose name is neither a static target
nor a discovered DNS name there is one whose failure nobody would see. Mandatory in prod."""

from __future__ import annotations

import yaml
from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from policies.common import aliases, component, containers_of, file_text, is_service, label_of

PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
NOT_SCRAPED = {
    # component -> why it has no scrape target
    "neon-controller-db": "PostgreSQL exports no metrics itself; the controller's own are scraped",
    "kong-db": "PostgreSQL exports no metrics itself; Kong's are scraped",
    "neon-pooler": "pgbouncer exports no metrics endpoint; the compute behind it is scraped",
    "neon-compute-notify": "a static hook answered by nginx for the storage controller",
    "neon-controller-dump": "a pg_dump loop: its dumps are watched through the upload service's metrics",
}
"""Services without a /metrics of their own, and why: the rule lets these alone."""


def scraped_names(prometheus_yml: str) -> set[str]:
    """The host names a Prometheus config scrapes: static targets and DNS-discovered names
    (`localhost` is Prometheus itself)."""
    config = yaml.safe_load(prometheus_yml) or {}
    names = set()
    for job in config.get("scrape_configs") or []:
        for static in job.get("static_configs") or []:
            names |= {target.rsplit(":", 1)[0] for target in static.get("targets") or []}
        for discovery in job.get("dns_sd_configs") or []:
            names |= set(discovery.get("names") or [])
    return names


def _services_scraped(args: StackValidationArgs, report: ReportViolation) -> None:
    services = [w for w in containers_of(args.resources) if is_service(w.props)]
    watched = [s for s in services if component(s.props) not in NOT_SCRAPED]
    if not watched:
        args.not_applicable("no long-running service in this stack")
    prometheus = containers_of(args.resources, "prometheus")
    if not prometheus:
        report(f"{len(watched)} service(s) run and no Prometheus scrapes them; set features.monitoring: true")
        return
    (server,) = prometheus[:1]
    scraped = scraped_names(file_text(args.resources, server, PROMETHEUS_CONFIG) or "")
    for service in watched:
        own = aliases(service.props) | ({"localhost"} if service is server else set())
        if not own & scraped:
            known_as = ", ".join(sorted(aliases(service.props)))
            report(
                f"{component(service.props)} {label_of(service)} ({known_as}) is no scrape target of "
                "Prometheus: give its tier a scrape job (components/scrape_targets.py)",
                service.urn,
            )


stack_services_scraped = StackValidationPolicy(
    name="stack-services-scraped",
    description="Every long-running service of the stack is a Prometheus scrape target.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_services_scraped,
)

POLICIES = [stack_services_scraped]
