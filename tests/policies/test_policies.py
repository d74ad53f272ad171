"""The policy pack: each rule from the compliant prod stack with one field changed, the real
stacks, and the offline checker's command line."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import sys
from collections.abc import Callable

import pytest
import yaml

from policies.check import evaluate, policy_settings
from policies.pack import POLICIES
from tests.harness import ROOT, SECRET_SIG, ProgramRun, run_program

SECRET = {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270"}
KONG = "kong-kong-service"
KONG_YML = "kong-kong-secret-0"
PROMETHEUS_YML = "monitoring-prometheus-config-0"
"""The Swarm secret holding the rendered kong.yml."""
COMPUTE_CONFIG = "neon-compute-main-postgres-secret-0"
"""The Swarm secret holding the main compute's config.json."""


@pytest.fixture(scope="module")
def prod_run() -> ProgramRun:
    return run_program("prod")


def mutated(run: ProgramRun, change: Callable[[ProgramRun], None]) -> ProgramRun:
    copied = copy.deepcopy(run)
    change(copied)
    return copied


def by_name(run: ProgramRun, name: str):
    return next(r for r in run.resources if r.name == name)


def set_input(name: str, key: str, value) -> Callable[[ProgramRun], None]:
    def change(run: ProgramRun) -> None:
        by_name(run, name).inputs[key] = value

    return change


def drop(name: str) -> Callable[[ProgramRun], None]:
    def change(run: ProgramRun) -> None:
        run.resources.remove(by_name(run, name))

    return change


def edit_secret(name: str, edit: Callable[[str], str]) -> Callable[[ProgramRun], None]:
    """Change the content of a Swarm secret a service mounts (base64 data, a Pulumi secret)."""

    def change(run: ProgramRun) -> None:
        data = by_name(run, name).inputs["data"]
        data["value"] = base64.b64encode(edit(base64.b64decode(data["value"]).decode()).encode()).decode()

    return change


def edit_config(name: str, edit: Callable[[str], str]) -> Callable[[ProgramRun], None]:
    """Change the content of a Swarm config a service mounts (plain base64 data)."""

    def change(run: ProgramRun) -> None:
        resource = by_name(run, name)
        text = base64.b64decode(resource.inputs["data"]).decode()
        resource.inputs["data"] = base64.b64encode(edit(text).encode()).decode()

    return change


def edit_kong_yml(edit: Callable[[dict], None]) -> Callable[[ProgramRun], None]:
    """Change the kong.yml the Kong service mounts."""

    def edited(text: str) -> str:
        document = yaml.safe_load(text)
        edit(document)
        return yaml.safe_dump(document)

    return edit_secret(KONG_YML, edited)


def with_ports(name: str, edit: Callable[[list], None]) -> Callable[[ProgramRun], None]:
    def change(run: ProgramRun) -> None:
        edit(by_name(run, name).inputs["ports"])

    return change


def plaintext_envs(name: str, extra: list[str]) -> Callable[[ProgramRun], None]:
    """Add `KEY=value` entries to a container's envs or a service's env map, in plaintext."""

    def change(run: ProgramRun) -> None:
        resource = by_name(run, name)
        if "taskSpec" in resource.inputs:
            spec = resource.inputs["taskSpec"]["containerSpec"]
            spec["env"] = {**spec.get("env", {}), **dict(e.split("=", 1) for e in extra)}
            return
        current = resource.inputs.get("envs", [])
        values = current["value"] if isinstance(current, dict) else current
        resource.inputs["envs"] = [*values, *extra]

    return change


def publish_on_every_interface(service: str, port: int) -> Callable[[ProgramRun], None]:
    """Publish `port` of a Swarm service (which cannot bind loopback)."""

    def change(run: ProgramRun) -> None:
        endpoint = by_name(run, service).inputs["endpointSpec"]
        endpoint["ports"] = [
            *endpoint.get("ports", []),
            {"targetPort": port, "publishedPort": port, "publishMode": "host"},
        ]

    return change


def strip_secret(name: str, key: str) -> Callable[[ProgramRun], None]:
    def change(run: ProgramRun) -> None:
        resource = by_name(run, name)
        resource.inputs[key] = resource.inputs[key]["value"]

    return change


def _without_last_safekeeper(text: str) -> str:
    config = json.loads(text)
    config["spec"]["safekeeper_connstrings"] = config["spec"]["safekeeper_connstrings"][:2]
    return json.dumps(config)


def _without_the_lb_job(text: str) -> str:
    config = yaml.safe_load(text)
    config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "qdrant-lb"]
    return yaml.safe_dump(config)


def edit_service(name: str, edit: Callable[[dict], None]) -> Callable[[ProgramRun], None]:
    """Change a Swarm service's inputs in place (`edit(inputs)`)."""

    def change(run: ProgramRun) -> None:
        edit(by_name(run, name).inputs)

    return change


def _pin(index: int) -> list[str]:
    return [f"node.labels.rag-infra.host.{index}==true"]


def _all_on_one_host(run: ProgramRun) -> None:
    for name in ("qdrant-node-1-service", "qdrant-node-2-service"):
        by_name(run, name).inputs["taskSpec"]["placement"]["constraints"] = _pin(0)


def _object_storage_on_one_host(run: ProgramRun) -> None:
    for name in ("neon-storage-minio-1-service", "neon-storage-minio-2-service"):
        by_name(run, name).inputs["taskSpec"]["placement"]["constraints"] = _pin(0)


def _object_storage_on_one_drive_per_node(run: ProgramRun) -> None:
    """Two nodes of one drive each (the third node dropped)."""
    for index in range(3):
        spec = by_name(run, f"neon-storage-minio-{index}-service").inputs["taskSpec"]["containerSpec"]
        spec["args"][1] = "http://minio-{0...1}:9000/data"
        spec["mounts"] = [{**spec["mounts"][0], "target": "/data"}]
    run.resources.remove(by_name(run, "neon-storage-minio-2-service"))


def _unpinned_member(run: ProgramRun) -> None:
    by_name(run, "qdrant-node-2-service").inputs["taskSpec"]["placement"].pop("constraints")


def _api_key_in_a_config(inputs: dict) -> None:
    spec = inputs["taskSpec"]["containerSpec"]
    spec["configs"] = [
        {"configId": s["secretId"], "configName": s["secretName"], "fileName": s["fileName"]}
        for s in spec.pop("secrets")
    ]


def _one_docker_host(run: ProgramRun) -> None:
    """The stack on its first host alone: one Docker provider, every resource created with it."""
    first = by_name(run, "qdrant-storage-0").provider
    for other in ("docker-host-1", "docker-host-2"):
        run.resources.remove(by_name(run, other))
    for resource in run.resources:
        if "pulumi:providers:docker" in (resource.provider or ""):
            resource.provider = first


def _shared_volume(run: ProgramRun) -> None:
    mounts = by_name(run, "qdrant-node-1-service").inputs["taskSpec"]["containerSpec"]["mounts"]
    mounts[0]["source"] = "rag-infra-prod-qdrant-0-storage"


def _route_without_jwt(document: dict) -> None:
    route = document["services"][0]["routes"][0]
    route["plugins"] = [p for p in route["plugins"] if p["name"] != "jwt"]


CASES = [
    (
        "qdrant-nodes-odd-at-least-3",
        drop("qdrant-node-2-service"),
        "stack",
        "the Qdrant cluster has 2 nodes; it needs an odd number of at least 3",
    ),
    (
        "qdrant-replication-factor-at-least-2",
        set_input("qdrant-collection-docs_index_mxbai", "replication_factor", 1),
        "qdrant-collection-docs_index_mxbai",
        "collection docs_index_mxbai has replication_factor 1; it needs at least 2",
    ),
    (
        "qdrant-replication-factor-at-most-nodes",
        set_input("qdrant-collection-docs_index_mxbai", "replication_factor", 5),
        "qdrant-collection-docs_index_mxbai",
        "collection docs_index_mxbai has replication_factor 5 but the cluster has 3 nodes; "
        "Qdrant would silently place fewer replicas",
    ),
    (
        "qdrant-write-consistency-within-replication",
        set_input("qdrant-collection-docs_index_mxbai", "write_consistency_factor", 3),
        "qdrant-collection-docs_index_mxbai",
        "collection docs_index_mxbai has write_consistency_factor 3 above its replication_factor 2; "
        "every write would fail",
    ),
    (
        "qdrant-node-has-own-volume",
        _shared_volume,
        "qdrant-node-1-service",
        "Qdrant nodes rag-infra-prod-qdrant-0 and rag-infra-prod-qdrant-1 share volume "
        "rag-infra-prod-qdrant-0-storage",
    ),
    (
        "qdrant-p2p-port-unpublished",
        set_input(
            "qdrant-node-0-service",
            "endpointSpec",
            {"mode": "dnsrr", "ports": [{"targetPort": 6335, "publishedPort": 6335, "publishMode": "host"}]},
        ),
        "qdrant-node-0-service",
        "container rag-infra-prod-qdrant-0 publishes port 6335, Qdrant's unauthenticated p2p port",
    ),
    (
        "qdrant-api-key-set-and-secret",
        edit_service("qdrant-node-0-service", _api_key_in_a_config),
        "qdrant-node-0-service",
        "Qdrant node rag-infra-prod-qdrant-0 reads its API key from a Swarm config "
        "(/run/secrets/qdrant-api-key.yaml); use a Swarm secret",
    ),
    (
        "neon-safekeepers-odd-at-least-3",
        drop("neon-storage-safekeeper-2-service"),
        "stack",
        "Neon has 2 safekeepers; the WAL quorum needs an odd number of at least 3",
    ),
    (
        "neon-storage-on-persistent-volumes",
        edit_service(
            "neon-storage-pageserver-service", lambda i: i["taskSpec"]["containerSpec"].pop("mounts")
        ),
        "neon-storage-pageserver-service",
        "neon-pageserver rag-infra-prod-pageserver keeps /data outside a persistent volume",
    ),
    (
        "neon-object-storage-survives-a-host",
        _object_storage_on_one_host,
        "stack",
        "Neon's object storage has 6 drive(s) (6 on host 0); writes need 4, so losing one host stops "
        "them (and with a single host, loses every layer and WAL backup): set "
        "neon.objectStorage.nodes to 3 and drivesPerNode to 2",
    ),
    (
        "neon-compute-names-every-safekeeper",
        edit_secret(COMPUTE_CONFIG, _without_last_safekeeper),
        "neon-compute-main-postgres-service",
        "compute rag-infra-prod-neon-compute does not name safekeepers safekeeper-2",
    ),
    (
        "neon-storage-ports-loopback-only",
        publish_on_every_interface("neon-storage-controller-service", 1234),
        "neon-storage-controller-service",
        "neon-storage-controller rag-infra-prod-storage-controller publishes port "
        "1234 on 0.0.0.0; the storage tier is loopback-only",
    ),
    (
        "kong-route-has-jwt-and-rate-limiting",
        edit_kong_yml(_route_without_jwt),
        KONG_YML,
        "route rag-search has no jwt plugin and no exempt-from-jwt tag",
    ),
    (
        "kong-cors-origins-not-wildcard",
        edit_kong_yml(lambda d: d["plugins"][0]["config"].update(origins=["*"])),
        KONG_YML,
        "the CORS plugin allows every origin (*); list the application's origins",
    ),
    (
        "kong-admin-loopback-only",
        publish_on_every_interface(KONG, 8001),
        KONG,
        "Kong's admin API (port 8001) is published on 0.0.0.0; use 127.0.0.1",
    ),
    (
        "container-restart-policy-set",
        edit_service("qdrant-lb-service", lambda i: i["taskSpec"]["restartPolicy"].update(condition="none")),
        "qdrant-lb-service",
        "container rag-infra-prod-qdrant-lb has restart policy 'none'; "
        "use always, unless-stopped or on-failure (a service: any or on-failure)",
    ),
    (
        "container-has-healthcheck",
        edit_service(KONG, lambda i: i["taskSpec"]["containerSpec"].pop("healthcheck")),
        KONG,
        "container rag-infra-prod-kong has no health check",
    ),
    (
        "container-memory-limit",
        edit_service("qdrant-lb-service", lambda i: i["taskSpec"].pop("resources")),
        "qdrant-lb-service",
        "container rag-infra-prod-qdrant-lb has no memory limit",
    ),
    (
        "container-image-pinned",
        set_input("qdrant-image", "name", "qdrant/qdrant:latest"),
        "qdrant-image",
        "image 'qdrant/qdrant:latest' is not pinned to a release tag or digest",
    ),
    (
        "container-no-plaintext-secret-env",
        plaintext_envs(KONG, ["KONG_PG_PASSWORD=hunter2"]),
        KONG,
        "container rag-infra-prod-kong sets KONG_PG_PASSWORD in plaintext; pass it from a Pulumi secret",
    ),
    (
        "service-rolls-back-on-failure",
        edit_service("qdrant-lb-service", lambda i: i["updateConfig"].update(failureAction="pause")),
        "qdrant-lb-service",
        "service rag-infra-prod-qdrant-lb has failure_action 'pause'; use rollback, so a failed "
        "rollout undoes itself",
    ),
    (
        "service-with-volume-stops-first",
        edit_service("qdrant-node-1-service", lambda i: i["updateConfig"].update(order="start-first")),
        "qdrant-node-1-service",
        "service rag-infra-prod-qdrant-1 mounts a named volume and updates start-first: the new task "
        "would run beside the old one on the same data; use stop-first",
    ),
    (
        "stack-quorum-spread-over-hosts",
        _all_on_one_host,
        "stack",
        "the 3 Qdrant nodes run on 1 Docker host(s); spread them over at least 3",
    ),
    (
        "stack-public-listeners-tls",
        edit_service(
            KONG,
            lambda i: i["taskSpec"]["containerSpec"]["env"].update(
                KONG_PROXY_LISTEN="0.0.0.0:8000, 0.0.0.0:8443"
            ),
        ),
        KONG,
        "kong rag-infra-prod-kong publishes port(s) 8443 without TLS; set tls.enabled (a certificate from "
        "tlsCertificate and tlsPrivateKey, or a generated one)",
    ),
    (
        "stack-services-scraped",
        edit_config(PROMETHEUS_YML, _without_the_lb_job),
        "qdrant-lb-service",
        "qdrant-lb rag-infra-prod-qdrant-lb (qdrant-lb) is no scrape target of Prometheus: give its tier "
        "a scrape job (components/scrape_targets.py)",
    ),
    (
        "stack-hosts-for-a-quorum",
        _one_docker_host,
        "stack",
        "the stack runs on 1 Docker host(s): losing one stops the 3 Qdrant nodes and the 3 safekeepers; "
        "give it at least 3",
    ),
]


# Kong's admin port published on every interface is also a public port without TLS.
ALSO: dict[str, set[str]] = {"kong-admin-loopback-only": {"stack-public-listeners-tls"}}


def test_every_rule_has_a_case():
    assert {name for name, *_ in CASES} == {p.name for p in POLICIES}


def test_the_compliant_baseline_has_no_violation(prod_run):
    assert evaluate(prod_run, "prod", "prod") == []


@pytest.mark.parametrize(("rule", "change", "resource", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_from_the_compliant_baseline(prod_run, rule, change, resource, message):
    violations = evaluate(mutated(prod_run, change), "prod", "prod")
    found = [(v.rule, v.resource, v.message) for v in violations if v.rule == rule]
    assert found == [(rule, resource, message)]
    assert {v.rule for v in violations} - {rule} == ALSO.get(rule, set())
    expected_level = "advisory" if rule == "stack-hosts-for-a-quorum" else "mandatory"
    assert next(v for v in violations if v.rule == rule).level == expected_level


@pytest.mark.parametrize(("rule", "change", "resource", "message"), CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_dev_reports_the_same_rules_as_advisory(prod_run, rule, change, resource, message):
    violations = [v for v in evaluate(mutated(prod_run, change), "prod", "dev") if v.rule == rule]
    assert [(v.level, v.message) for v in violations] == [("advisory", message)]


def test_the_real_dev_stack_has_only_advisories():
    violations = evaluate(run_program("dev"), "dev", "dev")
    assert violations and all(v.level == "advisory" for v in violations)
    assert {v.rule for v in violations} >= {"container-memory-limit", "neon-safekeepers-odd-at-least-3"}


def test_object_storage_needs_every_drive_on_a_volume(prod_run):
    """A node whose command line names a drive it has no volume for keeps that drive's share of
    every object on the container's own layer."""

    def one_drive_unmounted(inputs: dict) -> None:
        inputs["taskSpec"]["containerSpec"]["mounts"].pop()

    run = mutated(prod_run, edit_service("neon-storage-minio-1-service", one_drive_unmounted))
    assert [(v.rule, v.resource, v.message) for v in evaluate(run, "prod", "prod")] == [
        (
            "neon-storage-on-persistent-volumes",
            "neon-storage-minio-1-service",
            "neon-object-storage rag-infra-prod-minio-1 keeps /data1 outside a persistent volume",
        )
    ]


def test_object_storage_of_two_nodes_with_one_drive_each_stops_writes_with_a_host(prod_run):
    """2 drives: parity 1, data 1, so a write needs both; the rule reports it (both sides: 3
    nodes of 2 drives pass in the baseline)."""
    violations = evaluate(mutated(prod_run, _object_storage_on_one_drive_per_node), "prod", "prod")
    assert [(v.rule, v.message.split(";")[0]) for v in violations] == [
        (
            "neon-object-storage-survives-a-host",
            "Neon's object storage has 2 drive(s) (1 on host 0, 1 on host 1)",
        )
    ]


@pytest.mark.parametrize(
    ("config", "edit", "resource", "ports"),
    [
        # The LB's gRPC TLS listener turned plaintext; the REST one stays TLS.
        (
            "qdrant-lb-config-0",
            lambda t: t.replace("listen 6444 ssl;", "listen 6444;"),
            "qdrant-lb-service",
            "6444",
        ),
        (
            "neon-pooler-pgbouncer-config-0",
            lambda t: t.replace("client_tls_sslmode = require", "client_tls_sslmode = prefer"),
            "neon-pooler-pgbouncer-service",
            "6432",
        ),
    ],
)
def test_a_plaintext_lb_or_pooler_port_is_reported(prod_run, config, edit, resource, ports):
    violations = evaluate(mutated(prod_run, edit_config(config, edit)), "prod", "prod")
    assert [(v.rule, v.resource, v.message.split(";")[0].rsplit(" ", 3)[1]) for v in violations] == [
        ("stack-public-listeners-tls", resource, ports)
    ]


def test_quorum_spread_is_mandatory_in_prod_on_three_hosts(prod_run):
    violations = evaluate(mutated(prod_run, _all_on_one_host), "prod", "prod")
    assert [(v.rule, v.level) for v in violations] == [("stack-quorum-spread-over-hosts", "mandatory")]


def test_single_vps_prod_deploys_with_a_warning():
    hosts = {"dockerHosts": ["unix:///var/run/docker.sock"]}
    violations = evaluate(run_program("prod", overrides=hosts), "prod", "prod")
    assert {(v.rule, v.level) for v in violations} == {("stack-hosts-for-a-quorum", "advisory")}


def test_two_hosts_cannot_spread_three_members_and_say_so():
    hosts = {
        "dockerHosts": ["ssh://deploy@docker-1.example.internal", "ssh://deploy@docker-2.example.internal"]
    }
    violations = evaluate(run_program("prod", overrides=hosts), "prod", "prod")
    assert {(v.rule, v.level) for v in violations} == {("stack-hosts-for-a-quorum", "advisory")}
    assert "runs on 2 Docker host(s)" in violations[0].message


def test_a_service_that_pulumi_up_would_not_wait_for_is_reported(prod_run):
    run = mutated(prod_run, edit_service("kong-kong-service", lambda i: i.pop("convergeConfig")))
    assert [(v.rule, v.message) for v in evaluate(run, "prod", "prod")] == [
        (
            "service-rolls-back-on-failure",
            "service rag-infra-prod-kong has no converge_config: pulumi up would not wait for it "
            "or see a rollback",
        )
    ]


def test_a_stateless_service_may_start_its_new_task_first(prod_run):
    assert prod_run.named("qdrant-lb-service").plain("updateConfig")["order"] == "start-first"
    assert "service-with-volume-stops-first" not in {v.rule for v in evaluate(prod_run, "prod", "prod")}


def test_policy_config_files_resolve_levels_and_defaults():
    policy = next(p for p in POLICIES if p.name == "stack-quorum-spread-over-hosts")
    assert policy_settings("prod", policy) == ("mandatory", {"minHosts": 3})
    hosts_rule = next(p for p in POLICIES if p.name == "stack-hosts-for-a-quorum")
    assert policy_settings("prod", hosts_rule) == ("advisory", {"minHosts": 3})
    secret_rule = next(p for p in POLICIES if p.name == "container-no-plaintext-secret-env")
    level, config = policy_settings("dev", secret_rule)
    assert level == "advisory" and config["secretsVisible"] is True


def test_plaintext_rule_is_not_applicable_where_secrets_are_invisible(prod_run):
    from pulumi_policy import ResourceValidationArgs

    rule = next(p for p in POLICIES if p.name == "container-no-plaintext-secret-env")
    kong = by_name(mutated(prod_run, plaintext_envs(KONG, ["KONG_PG_PASSWORD=x"])), KONG)
    args = ResourceValidationArgs(
        kong.typ, kong.inputs, "urn", kong.name, None, None, {"secretsVisible": False}
    )
    with pytest.raises(Exception) as err:
        rule.validate(args, lambda *a: None)
    assert type(err.value).__name__ == "_NotApplicableError"
    assert "secretness is not visible" in err.value.reason


def run_check(stack: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "policies.check", "--stack", stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_command_on_the_real_stacks():
    prod = run_check("prod")
    assert prod.returncode == 0, prod.stdout + prod.stderr
    assert "0 mandatory, 0 advisory" in prod.stderr
    dev = run_check("dev")
    assert dev.returncode == 0
    assert "[advisory] neon-safekeepers-odd-at-least-3 (stack)" in dev.stdout


def test_check_command_fails_on_a_mandatory_violation(tmp_path):
    stack_file = ROOT / "Pulumi.policy-test-prod.yaml"
    text = (ROOT / "Pulumi.prod.yaml").read_text().replace("replicationFactor: 2", "replicationFactor: 1")
    stack_file.write_text(text)
    try:
        result = run_check("policy-test-prod")
    finally:
        stack_file.unlink()
    assert result.returncode == 1
    assert (
        "[mandatory] qdrant-replication-factor-at-least-2 (qdrant-collection-docs_index_mxbai)"
        in result.stdout
    )


def test_the_pack_assembles_and_serves(tmp_path):
    # PolicyPack() validates every rule, then serves gRPC forever and prints its port first.
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "policies" / "__main__.py")],
        cwd=ROOT / "policies",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = process.stdout.readline().strip()
        assert port.isdigit(), process.stderr.read() if process.poll() is not None else port
    finally:
        process.kill()
        process.wait()


def test_a_stack_without_monitoring_is_reported_once():
    run = run_program(
        "prod", {"features": {"neon": True, "qdrantCluster": True, "kongGateway": True, "monitoring": False}}
    )
    found = [v for v in evaluate(run, "prod", "prod") if v.rule == "stack-services-scraped"]
    assert [(v.level, v.resource) for v in found] == [("mandatory", "stack")]
    assert found[0].message.endswith(
        "service(s) run and no Prometheus scrapes them; set features.monitoring: true"
    )
    # Dev may go without it, with a warning.
    assert {v.level for v in evaluate(run, "prod", "dev") if v.rule == "stack-services-scraped"} == {
        "advisory"
    }
