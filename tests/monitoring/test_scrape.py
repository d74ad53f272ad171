"""prometheus.yml from the renderer in Debian's real Prometheus 3.5 (the image's LTS line):
`promtool check config`, and a running Prometheus that scrapes stand-in `/metrics` endpoints,
one behind a bearer token read from a file, as Qdrant's API key is."""

from __future__ import annotations

import pytest

from components.monitoring.scrape import ScrapeJob, ScrapeTarget, render_prometheus_yml
from tests.support.prometheus import MetricsServer, active_targets, promtool, running_prometheus

TOKEN = "qdrant-api-key-1234"


@pytest.fixture
def endpoints():
    qdrant = MetricsServer("cluster_peers_total 3\n", token=TOKEN)
    neon = MetricsServer("libmetrics_build_info 1\n")
    yield qdrant, neon
    qdrant.close()
    neon.close()


def jobs(qdrant_port: int, neon_port: int, token_file: str, discover: bool = True) -> list[ScrapeJob]:
    """A job with a bearer token file, and one whose targets are discovered by name (what the
    tasks of a replicated service get: Prometheus asks the DNS server itself, Docker's on the
    stack network, so a live test here names the target instead)."""
    neon = (
        ScrapeJob("neon-pageserver", "neon", dns_name="pageserver", port=neon_port)
        if discover
        else ScrapeJob("neon-pageserver", "neon", [ScrapeTarget(f"127.0.0.1:{neon_port}", "pageserver")])
    )
    return [
        ScrapeJob(
            "qdrant",
            "qdrant",
            targets=[ScrapeTarget(f"127.0.0.1:{qdrant_port}", "qdrant-0")],
            bearer_file=token_file,
        ),
        neon,
    ]


def test_the_rendered_config_passes_promtool(tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    config = tmp_path / "prometheus.yml"
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    config.write_text(
        render_prometheus_yml(jobs(1, 2, str(token)), "dev", ["alertmanager:9093"], [str(rules)])
    )
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(config.read_text().replace("dns_sd_configs", "dns_sd_config"))
    assert promtool("check", "config", str(broken)).returncode != 0


def test_prometheus_scrapes_every_target_with_its_credentials_from_a_file(tmp_path, endpoints):
    """One Prometheus, two Qdrant jobs on the same endpoint: the token file with the key (and the
    newline a secret file may end in) is up, the one with another key is down with 401."""
    qdrant, neon = endpoints
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "wrong").write_text("wrong-key\n")
    live = jobs(qdrant.port, neon.port, str(tmp_path / "token"), discover=False)
    wrong = ScrapeJob("qdrant-wrong-key", "qdrant", live[0].targets, bearer_file=str(tmp_path / "wrong"))
    config = tmp_path / "prometheus.yml"
    config.write_text(render_prometheus_yml([*live, wrong], "dev", rule_files=[], scrape_interval="1s"))
    with running_prometheus(config, tmp_path / "data") as url:
        # Each scraped once: up or down, no longer unknown.
        scraped = active_targets(
            url, lambda active: bool(active) and all(t["health"] != "unknown" for t in active)
        )
    health = {(t["labels"]["job"], t["labels"]["tier"], t["labels"]["member"]): t for t in scraped}
    right, refused = ("qdrant", "qdrant", "qdrant-0"), ("qdrant-wrong-key", "qdrant", "qdrant-0")
    pageserver = ("neon-pageserver", "neon", "pageserver")
    assert set(health) == {right, refused, pageserver}
    assert health[pageserver]["health"] == "up"
    assert health[right]["health"] == "up", health[right]["lastError"]
    assert health[refused]["health"] == "down" and "401" in health[refused]["lastError"]


def test_a_job_needs_targets_or_a_name_to_discover():
    with pytest.raises(ValueError, match="scrape job x: give either targets or a DNS name"):
        render_prometheus_yml([ScrapeJob("x", "t")], "dev")
    with pytest.raises(ValueError, match="discovering kong needs a port"):
        render_prometheus_yml([ScrapeJob("x", "t", dns_name="kong")], "dev")
    with pytest.raises(ValueError, match=r"scrape jobs named twice: \['x'\]"):
        render_prometheus_yml([ScrapeJob("x", "t", dns_name="a", port=1)] * 2, "dev")
