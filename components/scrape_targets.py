"""What the monitoring tier scrapes and alerts on, for the tiers a stack deploys: each tier's
scrape jobs, the files of credentials they read, and the sizes the alert rules compare with."""

from __future__ import annotations

import pulumi

from components.kong.gateway import scrape_jobs as kong_jobs
from components.monitoring.rules import AlertTargets
from components.monitoring.scrape import ScrapeJob
from components.neon import controller_backups
from components.neon.database import scrape_jobs as neon_jobs
from components.qdrant import backups
from components.qdrant.cluster import scrape_jobs as qdrant_jobs
from components.settings import StackSettings

QDRANT_API_KEY_FILE = "/run/secrets/prometheus-qdrant-api-key"
"""Where Prometheus reads the Qdrant API key it sends as a bearer token (a Swarm secret)."""


def stack_scrape_jobs(settings: StackSettings) -> list[ScrapeJob]:
    """Every long-running service of the deployed tiers, as scrape jobs."""
    features = settings.features
    return [
        *(neon_jobs(settings.neon) if features.neon else []),
        *(qdrant_jobs(settings.qdrant, QDRANT_API_KEY_FILE) if features.qdrant_cluster else []),
        *(kong_jobs() if features.kong_gateway else []),
        *(backups.scrape_jobs() if backups.deployed(settings) else []),
        *(controller_backups.scrape_jobs() if controller_backups.deployed(settings) else []),
    ]


def scrape_credentials(qdrant_api_key: pulumi.Output[str] | None) -> dict[str, pulumi.Output[str]]:
    """The files those jobs read, by path."""
    return {QDRANT_API_KEY_FILE: qdrant_api_key} if qdrant_api_key is not None else {}


def stack_alert_targets(settings: StackSettings) -> AlertTargets:
    """The stack's quorum sizes, and the plan's latency and error targets as `verify.load` has them."""
    load = settings.verify.load
    return AlertTargets(
        qdrant_nodes=settings.qdrant.nodes if settings.features.qdrant_cluster else 0,
        safekeepers=settings.neon.safekeepers if settings.features.neon else 0,
        qdrant_backup_every_s=settings.qdrant.backups.every_hours * 3600 if backups.deployed(settings) else 0,
        controller_backup_every_s=(
            settings.neon.controller_backups.every_hours * 3600
            if controller_backups.deployed(settings)
            else 0
        ),
        p95_ms=load.p95_ms,
        max_error_rate=load.max_error_rate,
    )
