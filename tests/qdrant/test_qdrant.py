"""QdrantCluster under mocks for dev and prod; prod is dev plus placement over three hosts."""

from __future__ import annotations

import pytest
import yaml

from components.qdrant.lb_config import LbOptions, Upstream, render_qdrant_lb_conf
from tests.harness import unwrap_secrets

STACKS = ["dev", "prod"]


def nodes(run, stack):
    return sorted(
        (
            s
            for s in run.services
            if s.inputs["name"].startswith(f"rag-infra-{stack}-qdrant-")
            and {"label": "rag-infra.component", "value": "qdrant"} in s.plain("labels")
        ),
        key=lambda s: s.inputs["name"],
    )


def spec(service):
    return service.plain("taskSpec")["containerSpec"]


@pytest.mark.parametrize("stack", STACKS)
def test_three_clustered_nodes_each_bootstrapping_from_node_zero(program, stack):
    run = program(stack)
    found = nodes(run, stack)
    assert len(found) == 3
    for index, node in enumerate(found):
        assert node.inputs["name"] == f"rag-infra-{stack}-qdrant-{index}"
        assert node.plain("taskSpec")["networksAdvanceds"][0]["aliases"] == [f"qdrant-{index}"]
        assert spec(node)["args"] == [
            "./entrypoint.sh",
            "--uri",
            f"http://qdrant-{index}:6335",
            "--bootstrap",
            "http://qdrant-0:6335",
            "--config-path",
            "/run/secrets/qdrant-api-key.yaml",
        ]
        assert spec(node)["env"]["QDRANT__CLUSTER__ENABLED"] == "true"
        assert node.plain("endpointSpec")["mode"] == "dnsrr"
        assert "ports" not in node.plain("endpointSpec"), (
            "a node publishes nothing; clients go through the LB"
        )
        assert node.plain("mode") == {"replicated": {"replicas": 1}}


@pytest.mark.parametrize("stack", STACKS)
def test_the_api_key_reaches_each_node_as_a_swarm_secret_file_never_in_env(program, stack):
    run = program(stack)
    for node in nodes(run, stack):
        assert not any("API_KEY" in key for key in spec(node)["env"])
        files = run.service_files(node)
        content, secret = files["/run/secrets/qdrant-api-key.yaml"]
        assert secret and yaml.safe_load(content) == {"service": {"api_key": run.outputs["qdrantApiKey"]}}
        (ref,) = spec(node)["secrets"]
        assert ref["secretName"] not in str(run.outputs["qdrantApiKey"])
    for resource in run.of_type("docker:index/secret:Secret"):
        assert "4dabf18193072939515e22adb298388d" in resource.inputs["data"], "secret data is a Pulumi secret"


@pytest.mark.parametrize("stack", STACKS)
def test_each_node_is_pinned_to_the_host_of_its_own_volumes(program, stack):
    run = program(stack)
    volumes = {r.inputs["name"]: r for r in run.of_type("docker:index/volume:Volume")}
    seen = []
    for node in nodes(run, stack):
        mounts = {(m["source"], m["target"]) for m in spec(node)["mounts"]}
        assert {t for _, t in mounts} == {"/qdrant/storage", "/qdrant/snapshots"}
        (constraint,) = node.plain("taskSpec")["placement"]["constraints"]
        host_index = int(constraint.removeprefix("node.labels.rag-infra.host.").removesuffix("==true"))
        for source, _ in mounts:
            # The volume is created on the host the node is pinned to.
            assert run.provider_host(volumes[source]) == run.named(f"docker-host-{host_index}").inputs["host"]
            seen.append(source)
        # A member stops before its replacement starts: two processes never share its volume.
        assert node.plain("updateConfig")["order"] == "stop-first"
    assert len(seen) == len(set(seen)) == 6


@pytest.mark.parametrize("stack", STACKS)
def test_healthcheck_needs_no_curl(program, stack):
    for node in nodes(program(stack), stack):
        test = spec(node)["healthcheck"]["tests"]
        assert test[:3] == ["CMD", "bash", "-c"]
        assert "/dev/tcp/127.0.0.1/6333" in test[3] and "/readyz" in test[3]
        assert not any("curl" in part or "wget" in part for part in test)


@pytest.mark.parametrize("stack", STACKS)
def test_updates_roll_one_task_at_a_time_and_roll_back_on_failure(program, stack):
    for service in program(stack).services:
        update = service.plain("updateConfig")
        assert (update["parallelism"], update["failureAction"]) == (1, "rollback"), service.name
        assert update["monitor"] == "30s" and service.plain("convergeConfig")["timeout"]


@pytest.mark.parametrize("stack", STACKS)
def test_lb_runs_on_every_host_publishes_in_host_mode_and_ships_its_config(program, stack):
    run = program(stack)
    lb = run.service(f"rag-infra-{stack}-qdrant-lb")
    assert lb.plain("mode") == {"replicated": {"replicas": 3 if stack == "prod" else 1}}
    assert lb.plain("taskSpec")["placement"].get("maxReplicas") == (1 if stack == "prod" else None)
    ports = lb.plain("endpointSpec")["ports"]
    # Prod publishes the LB's TLS listeners (components/platform/tls.py) on the same host ports.
    rest, grpc = (6443, 6444) if stack == "prod" else (6333, 6334)
    assert {(p["targetPort"], p["publishedPort"], p["publishMode"]) for p in ports} == {
        (rest, 6333, "host"),
        (grpc, 6334, "host"),
    }
    conf, secret = run.service_files(lb)["/etc/nginx/nginx.conf"]
    assert not secret
    for index in range(3):
        assert f"server qdrant-{index}:6333" in conf
        assert f"server qdrant-{index}:6334" in conf
    assert "location = /lb-healthz" in conf and "/lb-healthz" in " ".join(spec(lb)["healthcheck"]["tests"])
    assert lb.plain("updateConfig")["order"] == "start-first"
    assert run.outputs["qdrantUrl"].endswith(":6333")
    assert run.outputs["qdrantGrpcUrl"].endswith(":6334")


def test_prod_places_one_node_on_each_host_and_lists_every_lb_address(program):
    run = program("prod")
    constraints = [n.plain("taskSpec")["placement"]["constraints"] for n in nodes(run, "prod")]
    assert constraints == [[f"node.labels.rag-infra.host.{i}==true"] for i in range(3)]
    for node in nodes(run, "prod"):
        assert node.plain("taskSpec")["resources"]["limits"]["memoryBytes"] == 4096 * 1024 * 1024
    assert run.outputs["qdrantUrls"] == [f"https://docker-{i}.example.internal:6333" for i in (1, 2, 3)]


def test_dev_places_all_nodes_on_the_local_docker(program):
    run = program("dev")
    constraints = [n.plain("taskSpec")["placement"]["constraints"] for n in nodes(run, "dev")]
    assert constraints == [["node.labels.rag-infra.host.0==true"]] * 3
    assert {run.provider_host(s) for s in run.services} == {"unix:///var/run/docker.sock"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_plans_collection_is_created_with_ha_parameters(program, stack):
    run = program(stack)
    (collection,) = run.of_type("pulumi-python:dynamic/qdrant:Collection")
    inputs = unwrap_secrets(collection.inputs)
    assert inputs["name"] == "docs_index_mxbai"
    assert (inputs["vector_size"], inputs["distance"]) == (1024, "Cosine")
    assert inputs["replication_factor"] == 2 and inputs["expected_peers"] == 3
    assert inputs["url"] == run.outputs["qdrantUrl"]
    # The API key travels as a secret input, never in plaintext.
    assert "4dabf18193072939515e22adb298388d" in collection.inputs["api_key"]


def test_lb_config_for_the_pinned_image_uses_current_nginx_syntax():
    conf = render_qdrant_lb_conf(
        [Upstream("qdrant-0"), Upstream("qdrant-1")], LbOptions(nginx_version=(1, 30, 4))
    )
    assert "http2 on;" in conf and "listen 6334;" in conf
    assert "server qdrant-0:6333 max_fails=2 fail_timeout=10s resolve;" in conf
    assert "resolver 127.0.0.11" in conf and "zone qdrant_rest" in conf
    assert "client_max_body_size 32m;" in conf


def test_lb_config_for_old_nginx_uses_the_listen_parameter():
    conf = render_qdrant_lb_conf([Upstream("qdrant-0")], LbOptions(nginx_version=(1, 22, 1)))
    assert "listen 6334 http2;" in conf and "http2 on;" not in conf
    assert " resolve;" not in conf and "resolver" not in conf


@pytest.mark.parametrize("stack", STACKS)
def test_nodes_roll_out_one_at_a_time_each_after_the_one_before_is_back(program, stack):
    run = program(stack)
    deps = run.depends_on
    assert deps["qdrant-lb-service"] == {"docker-swarm-labels"}
    assert deps["qdrant-node-0-service"] == {"docker-swarm-labels"}
    for index in (1, 2):
        assert deps[f"qdrant-node-{index}-service"] == {
            "docker-swarm-labels",
            f"qdrant-node-{index - 1}-ready",
        }
    for index in range(3):
        assert deps[f"qdrant-node-{index}-ready"] == {f"qdrant-node-{index}", "qdrant-lb"}
        gate = unwrap_secrets(run.named(f"qdrant-node-{index}-ready").inputs)
        assert gate["peer_uri"] == f"http://qdrant-{index}:6335" and gate["revision"]
    assert {f"qdrant-node-{i}-ready" for i in range(3)} <= deps["qdrant-collection-docs_index_mxbai"]
    # Swarm configs and secrets exist only once the swarm does (else "This node is not a swarm
    # manager", as the real engine answered).
    for index in range(3):
        assert "docker-swarm-labels" in deps[f"qdrant-node-{index}-secret-0"]
    assert "docker-swarm-labels" in deps["qdrant-lb-config-0"]


def test_collections_keep_their_points_in_prod_unless_opted_in(program):
    collection = "qdrant-collection-docs_index_mxbai"
    prod, dev = program("prod"), program("dev")
    assert prod.named(collection).inputs["delete_with_points"] is False and collection in prod.retained
    assert dev.named(collection).inputs["delete_with_points"] is True and collection not in dev.retained
    collections = [
        {"name": "docs_index_mxbai", "vectorSize": 1024, "shardNumber": 6, "deleteWithPoints": True}
    ]
    run = program("prod", overrides={"qdrant": {"nodes": 3, "memoryMb": 4096, "collections": collections}})
    assert run.named(collection).inputs["delete_with_points"] is True


def test_lb_replicas_from_config_override_one_per_host(program):
    qdrant = {"nodes": 3, "memoryMb": 4096, "lbReplicas": 2, "collections": []}
    lb = program("prod", overrides={"qdrant": qdrant}).service("rag-infra-prod-qdrant-lb")
    assert lb.plain("mode") == {"replicated": {"replicas": 2}}
    assert lb.plain("taskSpec")["placement"]["maxReplicas"] == 1
