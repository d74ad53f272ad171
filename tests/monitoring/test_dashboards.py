"""The dashboards and alert rules against a real Prometheus 3.5 scraping what each service of the
prod stack exports (tests/support/fake_metrics.py, names read from the sources), through the
stack's own scrape jobs: every query parses, and every metric it reads has series, so no panel
or rule watches a name that no target exports."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from components.monitoring.config import dashboards, panel_queries
from components.monitoring.monitoring import own_jobs
from components.monitoring.rules import alert_rules
from components.monitoring.scrape import ScrapeTarget, render_prometheus_yml
from components.platform.objectstore import Metrics
from components.scrape_targets import stack_alert_targets, stack_scrape_jobs
from components.settings import parse_settings
from tests.support.fake_metrics import EXPOSITIONS, backup_exposition
from tests.support.prometheus import MetricsServer, active_targets, metric_names, running_prometheus

TOKEN = "qdrant-api-key-for-prometheus"
PROD = parse_settings(
    {"environment": "prod", "kong": {"cors": {"origins": ["https://app.example.com"]}}}, stack="prod"
)
QUERIES = [
    (f"{file}: {title}", expr) for file, text in dashboards().items() for title, expr in panel_queries(text)
]
RULES = [(rule["alert"], rule["expr"]) for rule in alert_rules(stack_alert_targets(PROD))]


class Scraped:
    """A Prometheus on loopback whose every target is up, and what it has stored."""

    def __init__(self, url: str) -> None:
        self.url = url
        names = requests.get(f"{url}/api/v1/label/__name__/values", timeout=10).json()["data"]
        self.names = set(names)

    def query(self, expr: str) -> dict:
        return requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    """Each job of the prod stack (every member) pointed at a server exporting its service's
    metrics; the Qdrant job sends its token from a file, as in the stack."""
    work: Path = tmp_path_factory.mktemp("prometheus")
    token = work / "qdrant-token"
    token.write_text(TOKEN + "\n")
    servers: list[MetricsServer] = []
    jobs = []
    for job in [*stack_scrape_jobs(PROD), *own_jobs()]:
        members = [t.member for t in job.targets] or [f"{job.dns_name}-task"]
        targets = []
        for member in members:
            server = MetricsServer(
                EXPOSITIONS[job.name], token=TOKEN if job.bearer_file else None, path=job.metrics_path
            )
            servers.append(server)
            targets.append(ScrapeTarget(f"127.0.0.1:{server.port}", member))
        jobs.append(
            replace(
                job,
                targets=targets,
                dns_name=None,
                port=None,
                bearer_file=str(token) if job.bearer_file else None,
            )
        )
    config = work / "prometheus.yml"
    config.write_text(render_prometheus_yml(jobs, "prod", rule_files=[], scrape_interval="1s"))

    def all_up(active: list[dict]) -> bool:
        return len(active) == len(servers) and all(t["health"] == "up" for t in active)

    try:
        with running_prometheus(config, work / "data") as url:
            active = active_targets(url, all_up, timeout=60)
            assert all_up(active), f"not every target is up: {json.dumps(active, indent=1)[:3000]}"
            time.sleep(2.5)  # a few scrapes, so rates over the samples have two points
            yield Scraped(url)
    finally:
        for server in servers:
            server.close()


@pytest.mark.parametrize("where, expr", QUERIES + RULES, ids=[name for name, _ in QUERIES + RULES])
def test_every_panel_and_rule_parses_and_reads_only_exported_metrics(scraped, where, expr):
    answer = scraped.query(expr)
    assert answer["status"] == "success", f"{where}: {answer.get('error')}"
    missing = metric_names(expr) - scraped.names
    assert not missing, f"{where} reads {sorted(missing)}, which no target exports"


def test_the_check_sees_a_misspelled_metric_and_broken_promql(scraped):
    # Guards the test above: a name one letter off is missing, and bad syntax is refused.
    assert metric_names("sum(rate(kong_http_request_total[1m]))") - scraped.names == {
        "kong_http_request_total"
    }
    assert scraped.query("sum(rate(kong_http_requests_total[1m])")["status"] == "error"


def test_every_dashboard_names_the_provisioned_datasource():
    for file, text in dashboards().items():
        board = json.loads(text)
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, (file, panel["title"])
            assert panel["targets"], (file, panel["title"])
    uids = [json.loads(text)["uid"] for text in dashboards().values()]
    assert len(set(uids)) == len(uids) and "rag-infra-overview" in uids


@pytest.mark.parametrize("prefix", ["qdrant_backup", "neon_controller_backup"])
def test_the_backup_expositions_are_what_the_services_serve(prefix):
    """fake_metrics writes the backup services' metrics out (the stand-in images carry it without
    the components package): the same families, types and samples as objectstore.Metrics."""
    served = Metrics(prefix)
    served.last_success, served.kept = 1.7642e9, 7

    def families(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.startswith("# HELP")]

    assert families(backup_exposition(prefix)) == families(served.text())
