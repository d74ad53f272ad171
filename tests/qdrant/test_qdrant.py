"""QdrantCluster under mocks for dev and prod; prod is dev plus placement over three hosts."""

from __future__ import annotations

import pytest

from components.qdrant.lb_config import LbOptions, Upstream, render_qdrant_lb_conf
from tests.harness import unwrap_secrets

STACKS = ["dev", "prod"]


def nodes(run, stack):
    return [
        c
        for c in run.containers
        if c.inputs["name"].startswith(f"rag-infra-{stack}-qdrant-") and "lb" not in c.inputs["name"]
    ]


@pytest.mark.parametrize("stack", STACKS)
def test_three_clustered_nodes_each_bootstrapping_from_node_zero(program, stack):
    run = program(stack)
    found = sorted(nodes(run, stack), key=lambda c: c.inputs["name"])
    assert len(found) == 3
    for index, node in enumerate(found):
        assert node.inputs["name"] == f"rag-infra-{stack}-qdrant-{index}"
        assert node.inputs["networksAdvanced"][0]["aliases"] == [f"qdrant-{index}"]
        assert node.inputs["command"] == [
            "./entrypoint.sh",
            "--uri",
            f"http://qdrant-{index}:6335",
            "--bootstrap",
            "http://qdrant-0:6335",
        ]
        envs = unwrap_secrets(node.inputs["envs"])
        assert "QDRANT__CLUSTER__ENABLED=true" in envs
        api_keys = [e for e in envs if e.startswith("QDRANT__SERVICE__API_KEY=")]
        assert len(api_keys) == 1 and api_keys[0] == f"QDRANT__SERVICE__API_KEY={run.outputs['qdrantApiKey']}"
        assert node.inputs["restart"] == "always"
        assert "ports" not in node.inputs, "a Qdrant node publishes nothing; clients go through the LB"


@pytest.mark.parametrize("stack", STACKS)
def test_each_node_has_its_own_volumes(program, stack):
    run = program(stack)
    mounts = [
        {(v["volumeName"], v["containerPath"]) for v in node.inputs["volumes"]} for node in nodes(run, stack)
    ]
    paths = [{p for _, p in m} for m in mounts]
    assert all(p == {"/qdrant/storage", "/qdrant/snapshots"} for p in paths)
    volume_names = [v for m in mounts for v, _ in m]
    assert len(volume_names) == len(set(volume_names)) == 6
    declared = {r.inputs["name"] for r in run.of_type("docker:index/volume:Volume")}
    assert set(volume_names) <= declared


@pytest.mark.parametrize("stack", STACKS)
def test_healthcheck_needs_no_curl(program, stack):
    for node in nodes(program(stack), stack):
        test = node.inputs["healthcheck"]["tests"]
        assert test[:3] == ["CMD", "bash", "-c"]
        assert "/dev/tcp/127.0.0.1/6333" in test[3] and "/readyz" in test[3]
        assert not any("curl" in part or "wget" in part for part in test)


@pytest.mark.parametrize("stack", STACKS)
def test_p2p_port_is_never_published(program, stack):
    run = program(stack)
    for container in run.containers:
        for port in container.inputs.get("ports", []):
            assert port["internal"] != 6335 and port.get("external") != 6335


@pytest.mark.parametrize("stack", STACKS)
def test_lb_publishes_rest_and_grpc_and_ships_its_config(program, stack):
    run = program(stack)
    lb = run.container(f"rag-infra-{stack}-qdrant-lb")
    assert {(p["internal"], p["external"]) for p in lb.inputs["ports"]} == {(6333, 6333), (6334, 6334)}
    conf = lb.inputs["uploads"][0]
    assert conf["file"] == "/etc/nginx/nginx.conf"
    for index in range(3):
        assert f"server qdrant-{index}:6333" in conf["content"]
        assert f"server qdrant-{index}:6334" in conf["content"]
    assert run.outputs["qdrantUrl"].endswith(":6333")
    assert run.outputs["qdrantGrpcUrl"].endswith(":6334")


def test_prod_places_one_node_on_each_host(program):
    run = program("prod")
    hosts = {run.provider_host(node) for node in nodes(run, "prod")}
    assert hosts == {f"ssh://deploy@docker-{i}.example.internal" for i in (1, 2, 3)}
    for node in nodes(run, "prod"):
        assert node.inputs["memory"] == 4096


def test_dev_places_all_nodes_on_the_local_docker(program):
    run = program("dev")
    assert {run.provider_host(node) for node in nodes(run, "dev")} == {"unix:///var/run/docker.sock"}


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
def test_start_order_node_zero_then_followers_then_lb_then_collections(program, stack):
    deps = program(stack).depends_on
    assert deps["qdrant-node-0"] == set()
    assert deps["qdrant-node-1"] == deps["qdrant-node-2"] == {"qdrant-node-0"}
    assert deps["qdrant-lb"] == {"qdrant-node-0", "qdrant-node-1", "qdrant-node-2"}
    assert {"qdrant-lb", "qdrant-node-0"} <= deps["qdrant-collection-docs_index_mxbai"]


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
