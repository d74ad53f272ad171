"""The monitoring tier as the program deploys it (under mocks): what runs where, what each
service mounts, its files in the real tools (promtool, amtool), and what stays secret."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from components.monitoring.config import UI_ONLY_RECEIVER, WEBHOOK_RECEIVER, dashboards
from components.monitoring.monitoring import GRAFANA_PASSWORD_FILE, WEBHOOK_URL_FILE
from components.scrape_targets import QDRANT_API_KEY_FILE
from components.settings import SettingsError, parse_settings
from tests.harness import contains_secret_wrapper
from tests.support.prometheus import PROMETHEUS_HOME, promtool

AMTOOL = PROMETHEUS_HOME.parent / "alertmanager" / "root" / "usr" / "bin" / "amtool"
WEBHOOK = "https://hooks.example.com/rag-infra/alerts-token-9f2"


def service(run, stack: str, alias: str):
    return run.service(f"rag-infra-{stack}-{alias}")


def amtool_check(path) -> subprocess.CompletedProcess:
    if not AMTOOL.exists():
        raise RuntimeError(f"no amtool at {AMTOOL}: .ci/run installs it with .ci/sid-binary.sh")
    return subprocess.run(
        [str(AMTOOL), "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_prometheus_runs_on_the_first_host_with_its_volume_retention_and_checked_files(
    program, stack, tmp_path
):
    run = program(stack)
    prometheus = service(run, stack, "prometheus")
    spec = prometheus.plain("taskSpec")
    assert spec["placement"]["constraints"] == ["node.labels.rag-infra.host.0==true"]
    (mount,) = spec["containerSpec"]["mounts"]
    assert mount["target"] == "/prometheus" and mount["source"] == f"rag-infra-{stack}-prometheus-data"
    assert "--storage.tsdb.retention.time=15d" in spec["containerSpec"]["args"]
    files = run.service_files(prometheus)
    config_text, secret = files["/etc/prometheus/prometheus.yml"]
    assert not secret
    # The files as promtool reads them: the config names the rule file and the token file by
    # their paths in the container, so they are written at the same paths under tmp_path.
    for path, (content, _) in files.items():
        local = tmp_path / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(content)
    rooted = config_text.replace("/etc/prometheus/", f"{tmp_path}/etc/prometheus/").replace(
        "/run/secrets/", f"{tmp_path}/run/secrets/"
    )
    (tmp_path / "prometheus.yml").write_text(rooted)
    checked = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The plan's criteria, the quorums of prod's sizes, and the backups' two rules.
    assert "SUCCESS: 16 rules found" in checked.stdout + checked.stderr or stack == "dev"
    config = yaml.safe_load(config_text)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {
        "qdrant",
        "qdrant-lb",
        "kong",
        "neon-pageserver",
        "neon-safekeeper",
        "minio",
        "prometheus",
    } <= set(jobs)
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]


def test_the_qdrant_key_reaches_prometheus_as_a_secret_file_and_never_as_config_text(program):
    run = program("prod")
    files = run.service_files(service(run, "prod", "prometheus"))
    key, secret = files[QDRANT_API_KEY_FILE]
    assert secret and key == run.outputs["qdrantApiKey"]  # the cluster's own key
    config = yaml.safe_load(files["/etc/prometheus/prometheus.yml"][0])
    qdrant = next(job for job in config["scrape_configs"] if job["job_name"] == "qdrant")
    assert qdrant["authorization"] == {"type": "Bearer", "credentials_file": QDRANT_API_KEY_FILE}
    assert key not in files["/etc/prometheus/prometheus.yml"][0]
    targets = [t for static in qdrant["static_configs"] for t in static["targets"]]
    assert targets == ["qdrant-0:6333", "qdrant-1:6333", "qdrant-2:6333"]


def test_prod_alert_rules_count_its_quorums(program):
    run = program("prod")
    rules_text = run.service_files(service(run, "prod", "prometheus"))["/etc/prometheus/rules.yml"][0]
    rules = {r["alert"]: r for r in yaml.safe_load(rules_text)["groups"][0]["rules"]}
    assert "< 2" in rules["SafekeeperQuorumLost"]["expr"]  # 2 of prod's 3 safekeepers
    assert "< 3" in rules["QdrantPeerMissing"]["expr"]


@pytest.mark.parametrize("webhook", [None, WEBHOOK])
def test_alertmanager_sends_to_the_webhook_secret_or_keeps_alerts_in_its_ui(program, webhook, tmp_path):
    run = program("dev", secret_overrides={"alertWebhookUrl": webhook} if webhook else None)
    alertmanager = service(run, "dev", "alertmanager")
    files = run.service_files(alertmanager)
    text, secret = files["/etc/alertmanager/alertmanager.yml"]
    config = yaml.safe_load(text)
    assert not secret
    if webhook:
        assert config["route"]["receiver"] == WEBHOOK_RECEIVER
        assert config["receivers"][0]["webhook_configs"][0]["url_file"] == WEBHOOK_URL_FILE
        assert files[WEBHOOK_URL_FILE] == (webhook, True)
        assert webhook not in text
    else:
        assert config["route"]["receiver"] == UI_ONLY_RECEIVER
        assert config["receivers"] == [{"name": UI_ONLY_RECEIVER}]
        assert WEBHOOK_URL_FILE not in files
    # amtool (the Alertmanager release of the image) reads it, the URL file where it points.
    if webhook:
        (tmp_path / "url").write_text(webhook)
        text = text.replace(WEBHOOK_URL_FILE, str(tmp_path / "url"))
    (tmp_path / "alertmanager.yml").write_text(text)
    checked = amtool_check(tmp_path / "alertmanager.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("receiver:", "reciever:", 1))
    assert amtool_check(broken).returncode != 0


def test_grafana_gets_its_password_from_a_secret_file_and_the_dashboards_from_the_repository(program):
    run = program("dev")
    grafana = service(run, "dev", "grafana")
    env = grafana.plain("taskSpec")["containerSpec"]["env"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == GRAFANA_PASSWORD_FILE
    assert not any(key == "GF_SECURITY_ADMIN_PASSWORD" for key in env)
    files = run.service_files(grafana)
    assert files[GRAFANA_PASSWORD_FILE][1] is True
    datasources = yaml.safe_load(files["/etc/grafana/provisioning/datasources/prometheus.yaml"][0])
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(files["/etc/grafana/provisioning/dashboards/rag-infra.yaml"][0])
    path = provider["providers"][0]["options"]["path"]
    assert {f"{path}/{name}": (text, False) for name, text in dashboards().items()}.items() <= files.items()
    # Published nowhere: operators reach it on the first host's loopback.
    assert not (grafana.plain("endpointSpec") or {}).get("ports")


def test_outputs_are_loopback_urls_and_the_grafana_password_is_secret(program):
    run = program("dev")
    assert run.outputs["prometheusUrl"] == "http://127.0.0.1:9090"
    assert run.outputs["alertmanagerUrl"] == "http://127.0.0.1:9093"
    assert run.outputs["grafanaUrl"] == "http://127.0.0.1:3000"
    assert "grafanaAdminPassword" in run.secret_outputs
    access = run.container("rag-infra-dev-operator-access")
    assert {9090, 9093, 3000} <= {p["external"] for p in access.plain("ports")}
    assert not contains_secret_wrapper(run.outputs["grafanaUrl"])


def test_with_monitoring_off_nothing_of_it_is_deployed(program):
    run = program("dev", overrides={"features": {"monitoring": False}})
    components = {s.plain("labels")[0]["value"] for s in run.services if s.plain("labels")}
    names = {s.plain("name") for s in run.services}
    assert not {n for n in names if n.endswith(("prometheus", "alertmanager", "grafana"))}
    assert components  # the other tiers are still there
    assert not {"prometheusUrl", "alertmanagerUrl", "grafanaUrl", "grafanaAdminPassword"} & set(run.outputs)
    access = run.container("rag-infra-dev-operator-access")
    assert not {9090, 9093, 3000} & {p["external"] for p in access.plain("ports")}


def test_bad_monitoring_settings_name_their_key():
    with pytest.raises(SettingsError, match=r"rag-infra:monitoring.retention must be a Prometheus duration"):
        parse_settings({"monitoring": {"retention": "15 days"}}, stack="dev")
    with pytest.raises(SettingsError, match=r"rag-infra:monitoring.memoryMb must be a whole number >= 256"):
        parse_settings({"monitoring": {"memoryMb": 100}}, stack="dev")
    with pytest.raises(SettingsError, match=r"rag-infra:kong.adminPort and rag-infra:monitoring.grafanaPort"):
        parse_settings({"monitoring": {"grafanaPort": 8001}}, stack="dev")
    with pytest.raises(
        SettingsError, match=r"monitoring.+uses port 9090 for both prometheusPort and grafanaPort"
    ):
        parse_settings({"monitoring": {"grafanaPort": 9090}}, stack="dev")
    # Off, its ports are nobody's.
    parse_settings({"features": {"monitoring": False}, "monitoring": {"grafanaPort": 8001}}, stack="dev")


def test_each_neon_target_is_the_port_its_service_listens_on(program):
    """Read from each service's own command line: the broker's --listen-addr, the controller's
    --listen, each safekeeper's --listen-http (not the +i port of its loopback forward)."""
    run = program("prod")
    config = yaml.safe_load(
        run.service_files(service(run, "prod", "prometheus"))["/etc/prometheus/prometheus.yml"][0]
    )
    targets = {
        job["job_name"]: [t for static in job.get("static_configs", []) for t in static["targets"]]
        for job in config["scrape_configs"]
    }

    def listens(alias: str, flag: str) -> str:
        command = run.workload(f"rag-infra-prod-{alias}").inputs["command"]
        text = " ".join(command) if isinstance(command, list) else command
        port = re.search(rf"{flag}=?\s*[\w.]*:(\d+)", text)
        assert port, f"{alias}: no {flag} in {text}"
        return f"{alias}:{port[1]}"

    assert targets["neon-safekeeper"] == [listens(f"safekeeper-{i}", "--listen-http") for i in range(3)]
    assert targets["neon-storage-controller"] == [listens("storage-controller", "--listen")]
    assert targets["neon-storage-broker"] == [listens("storage-broker", "--listen-addr")]
