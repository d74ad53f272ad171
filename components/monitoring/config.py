"""Pure renderers of the monitoring tier's other files: Alertmanager's config, Grafana's
provisioning (the Prometheus datasource and the dashboards folder), and the dashboards, which
are JSON files in `components/monitoring/dashboards/` (edit them there, or export one from
Grafana's UI into that folder)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "prometheus"
"""The uid every dashboard panel names its datasource by."""
UI_ONLY_RECEIVER = "ui-only"
WEBHOOK_RECEIVER = "webhook"


def render_alertmanager_yml(webhook_url_file: str | None) -> str:
    """alertmanager.yml: every alert to the webhook whose URL is in `webhook_url_file` (a
    secret file, read by Alertmanager: `url_file`, notify/webhook/config.go), or, with none, to
    a receiver with no integration: alerts are then seen in Alertmanager's UI only."""
    if webhook_url_file:
        receiver = {
            "name": WEBHOOK_RECEIVER,
            "webhook_configs": [{"url_file": webhook_url_file, "send_resolved": True}],
        }
    else:
        receiver = {"name": UI_ONLY_RECEIVER}
    config = {
        "route": {
            "receiver": receiver["name"],
            "group_by": ["alertname", "job"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        # A critical alert silences the warnings it explains (one safekeeper down, when the
        # quorum itself is lost).
        "inhibit_rules": [
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["job"],
            }
        ],
        "receivers": [receiver],
    }
    return (
        "# Rendered by rag-infra (components/monitoring/config.py). Do not edit by hand.\n"
        + yaml.safe_dump(config, sort_keys=False)
    )


def render_grafana_datasources(prometheus_url: str) -> str:
    """Grafana provisioning (apiVersion 1): the stack's Prometheus, the default datasource."""
    config = {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_grafana_dashboard_provider(path: str) -> str:
    """Grafana provisioning (apiVersion 1): the dashboards are the JSON files under `path`; a
    change in the UI cannot be saved over them (the files in the repository are the source)."""
    config = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "rag-infra",
                "folder": "rag-infra",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "options": {"path": path},
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def dashboards() -> dict[str, str]:
    """Every dashboard file (name -> JSON text), checked to be a dashboard this stack provisions."""
    found = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        text = path.read_text()
        board = json.loads(text)
        if not board.get("uid") or not board.get("title") or not board.get("panels"):
            raise ValueError(f"{path.name}: a dashboard needs a uid, a title and panels")
        found[path.name] = text
    if not found:
        raise ValueError(f"no dashboards in {DASHBOARDS}")
    return found


def panel_queries(dashboard: str) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of a dashboard's panels, rows included."""
    queries = []

    def visit(panels: list[dict]) -> None:
        for panel in panels:
            visit(panel.get("panels", []))
            for target in panel.get("targets", []):
                queries.append((panel.get("title", ""), target["expr"]))

    visit(json.loads(dashboard)["panels"])
    return queries
