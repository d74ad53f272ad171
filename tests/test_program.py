"""The whole program for each stack file under mocks: hosts, network, labels, secrets, appEnv."""

from __future__ import annotations

import itertools
import json
from urllib.parse import urlsplit

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.harness import contains_secret_wrapper, unwrap_secrets

STACKS = ["dev", "prod"]
TIERS = {"neon": "USE_NEON", "qdrantCluster": "QDRANT_CLUSTER_ENABLED", "kongGateway": "USE_KONG_GATEWAY"}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_runs_and_has_one_provider_per_docker_host(program, stack):
    run = program(stack)
    providers = run.of_type("pulumi:providers:docker")
    expected_hosts = {"dev": 1, "prod": 3}[stack]
    assert len(providers) == expected_hosts
    assert len({p.inputs["host"] for p in providers}) == expected_hosts
    for container in run.workloads:
        assert container.provider, f"{container.name} uses the default provider"


def test_every_stack_gets_an_attachable_encrypted_overlay_after_its_swarm(program):
    dev_run, prod_run = program("dev"), program("prod")
    dev, prod = dev_run.named("docker-network").inputs, prod_run.named("docker-network").inputs
    for network in (dev, prod):
        assert (network["driver"], network["attachable"], network["options"]) == (
            "overlay",
            True,
            {"encrypted": ""},
        )
    assert dev["name"] == "rag-infra-dev" and prod["name"] == "rag-infra-prod"
    assert (
        dev_run.depends_on["docker-network"]
        == prod_run.depends_on["docker-network"]
        == {"docker-swarm-labels"}
    )
    # The overlay is created once, on the first host (the Swarm manager).
    assert (
        prod_run.provider_host(prod_run.named("docker-network")) == "ssh://deploy@docker-1.example.internal"
    )


def test_prod_ssh_hosts_get_non_interactive_ssh_options(program):
    for provider in program("prod").of_type("pulumi:providers:docker"):
        assert provider.inputs["host"].startswith("ssh://")
        assert "BatchMode=yes" in json.loads(provider.inputs["sshOpts"])


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_is_labelled_with_stack_and_component(program, stack):
    run = program(stack)
    assert run.workloads
    for container in run.workloads:
        labels = {item["label"]: item["value"] for item in container.inputs["labels"]}
        assert labels["rag-infra.stack"] == stack
        assert labels["rag-infra.project"] == "rag-infra"
        assert labels["rag-infra.component"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_container_joins_the_stack_network_under_a_stable_alias(program, stack):
    for container in program(stack).workloads:
        networks = container.inputs["networksAdvanced"]
        assert [n["name"] for n in networks] == [f"rag-infra-{stack}"]
        assert networks[0]["aliases"]


FLAG_COMBINATIONS = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize(("neon", "qdrant", "kong"), FLAG_COMBINATIONS)
def test_app_env_follows_the_feature_flags(program, neon, qdrant, kong):
    features = {"neon": neon, "qdrantCluster": qdrant, "kongGateway": kong}
    run = program("dev", overrides={"features": features})
    env = dict(line.split("=", 1) for line in run.outputs["appEnv"].splitlines())
    assert "appEnv" in run.secret_outputs
    for flag, variable in TIERS.items():
        assert env[variable] == ("true" if features[flag] else "false")
    assert ("NEON_DATABASE_URL" in env) == neon
    assert ("QDRANT_CLUSTER_URL" in env) == qdrant
    assert ("KONG_GATEWAY_URL" in env) == kong
    components = {r.typ for r in run.resources}
    assert ("rag-infra:index:NeonDatabase" in components) == neon
    assert ("neonDatabaseUrl" in run.outputs) == neon
    assert ("rag-infra:index:QdrantCluster" in components) == qdrant
    assert ("rag-infra:index:KongGateway" in components) == kong
    assert ("qdrantUrl" in run.outputs) == qdrant


@pytest.mark.parametrize("stack", STACKS)
def test_generated_secrets_exist_only_as_secrets(program, stack):
    run = program(stack)
    generated = run.of_type("random:index/randomPassword:RandomPassword")
    assert generated, "no secret was generated"
    values = {f"generated-{r.name}" for r in generated}
    for name in ("qdrantApiKey", "appEnv", "neonDatabaseUrl", "kongJwtCredentials"):
        assert name in run.secret_outputs
    for resource in run.resources:
        for key, value in resource.inputs.items():
            if contains_secret_wrapper(value):
                continue
            text = json.dumps(value)
            leaked = [v for v in values if v in text]
            assert not leaked, f"{resource.name}.{key} carries a generated secret in plaintext"
    assert run.outputs["qdrantApiKey"] in values


def test_a_configured_secret_is_used_and_nothing_is_generated_for_it(program):
    run = program("dev", secret_overrides={"qdrantApiKey": "configured-key"})
    assert "qdrant-api-key" not in {r.name for r in run.of_type("random:index/randomPassword:RandomPassword")}
    node = run.service("rag-infra-dev-qdrant-0")
    content, is_secret = run.service_files(node)["/run/secrets/qdrant-api-key.yaml"]
    assert is_secret and "api_key: configured-key" in content
    (secret,) = [r for r in run.of_type("docker:index/secret:Secret") if r.name == "qdrant-node-0-secret-0"]
    assert contains_secret_wrapper(secret.inputs["data"])
    assert run.outputs["qdrantApiKey"] == "configured-key" and "qdrantApiKey" in run.secret_outputs


def _listens_on(container, port: int) -> bool:
    """Does the container's own configuration make its service listen on `port`, in plaintext
    (the appEnv URLs are the stack network's: no TLS inside)?"""
    envs = unwrap_secrets(container.inputs.get("envs")) or []
    uploads = unwrap_secrets(container.inputs.get("uploads")) or []
    for upload in uploads:
        if upload["file"].endswith(".json"):  # the compute spec: Postgres settings by name
            settings = json.loads(upload["content"])["spec"]["cluster"]["settings"]
            if {"name": "port", "value": str(port), "vartype": "integer"} in settings:
                return True
        elif f"listen {port};" in upload["content"] or f"listen_port = {port}\n" in upload["content"]:
            return True  # nginx, pgbouncer
    # Kong: `KONG_PROXY_LISTEN=0.0.0.0:8000, 0.0.0.0:8443 ssl`, an entry without flags.
    entries = [entry.strip() for e in envs if "_LISTEN=" in e for entry in e.split("=", 1)[1].split(",")]
    return f"0.0.0.0:{port}" in entries


@pytest.mark.parametrize("stack", STACKS)
def test_app_env_urls_reach_the_tiers_from_a_container_on_the_stack_network(program, stack):
    """The application runs in a container on the stack network: `localhost` would be itself."""
    run = program(stack)
    env = dict(line.split("=", 1) for line in run.outputs["appEnv"].splitlines())
    by_alias = {
        alias: container
        for container in run.workloads
        for network in container.inputs.get("networksAdvanced") or []
        for alias in network.get("aliases") or []
    }
    for variable in ("NEON_DATABASE_URL", "NEON_POOLED_URL", "QDRANT_CLUSTER_URL", "KONG_GATEWAY_URL"):
        url = urlsplit(env[variable])
        assert url.hostname in by_alias, f"{variable}: {url.hostname} is no alias on the stack network"
        assert _listens_on(by_alias[url.hostname], url.port), (variable, url.port)
    for variable in ("NEON_DATABASE_URL", "NEON_POOLED_URL"):
        neon = urlsplit(env[variable])
        assert (neon.username, neon.path) == ("rag", "/rag") and neon.password.startswith("generated-")
    # Every host, each on the published port: libpq tries them in turn (a task answers on its own node).
    pooled = conninfo_to_dict(run.outputs["neonPooledUrl"])
    host_count = len(run.of_type("pulumi:providers:docker"))
    assert "neonPooledUrl" in run.secret_outputs
    assert len(set(pooled["host"].split(","))) == host_count and set(pooled["port"].split(",")) == {"6432"}
    # The host-side URLs are separate outputs, for the machine running Pulumi.
    assert urlsplit(run.outputs["kongProxyUrl"]).port == 8000
    assert urlsplit(run.outputs["qdrantUrl"]).port == 6333


def test_prod_keeps_every_data_volume_when_its_resource_goes(program):
    """`pulumi destroy` of prod rolls the services back and leaves the data."""
    prod = program("prod")
    volumes = {r.name for r in prod.of_type("docker:index/volume:Volume")}
    assert volumes and volumes <= prod.retained
    assert {"qdrant-storage-0", "neon-storage-pageserver-data", "neon-storage-controller-db-data"} <= volumes
    dev = program("dev")
    assert not {r.name for r in dev.of_type("docker:index/volume:Volume")} & dev.retained
