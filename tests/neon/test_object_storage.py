"""Neon's object storage: MinIO's erasure arithmetic, the server command line read back, the
nodes under mocks (dev: one server; prod: three nodes of two drives over three hosts), and
MinioReady, the gate between two nodes' rollouts, against a fake deployment that answers the
health endpoints as MinIO does."""

from __future__ import annotations

import threading
import time

import pytest

from components.neon.minio_gate import MinioGateError, MinioReadyProvider
from components.neon.object_storage import (
    default_parity,
    expand_ellipses,
    minio_drive_paths,
    read_quorum,
    server_args,
    write_quorum,
    writes_survive_losing_any_host,
)
from components.neon.settings import ObjectStorageSettings
from components.neon.store_layout import ObjectStorageLayoutError, ObjectStorageLayoutProvider, layout_text
from components.settings import SettingsError, parse_settings
from tests.support.dynamic import roundtrip
from tests.support.fake_minio import FakeMinioCluster


@pytest.mark.parametrize(
    ("drives", "parity", "write", "read"),
    [(1, 0, 1, 1), (2, 1, 2, 1), (3, 1, 2, 2), (4, 2, 3, 2), (5, 2, 3, 3), (6, 3, 4, 3), (7, 3, 4, 4),
     (8, 4, 5, 4), (16, 4, 12, 12)],
)  # fmt: skip
def test_parity_and_quorums_follow_minio(drives, parity, write, read):
    """storageclass DefaultParityBlocks; defaultWQuorum adds one when data equals parity."""
    assert (default_parity(drives), write_quorum(drives), read_quorum(drives)) == (parity, write, read)


def test_writes_survive_a_lost_host_only_with_a_quorum_left_on_the_others():
    assert writes_survive_losing_any_host({"h0": 2, "h1": 2, "h2": 2})  # 6 drives: 4 left, 4 needed
    assert not writes_survive_losing_any_host({"h0": 4, "h1": 2})  # host 0 lost: 2 left, 4 needed
    assert not writes_survive_losing_any_host({"h0": 1, "h1": 1})  # 2 drives: both needed
    assert writes_survive_losing_any_host({"h0": 1, "h1": 1, "h2": 1})  # 3 drives: 2 left, 2 needed
    assert not writes_survive_losing_any_host({"h0": 6})  # one host is every host
    assert not writes_survive_losing_any_host({"h0": 2, "h1": 2})  # 4 drives: 2 left, 3 needed


def layout(nodes: int, drives: int) -> ObjectStorageSettings:
    return ObjectStorageSettings.model_validate({"nodes": nodes, "drivesPerNode": drives})


@pytest.mark.parametrize(
    ("nodes", "drives", "endpoints", "paths"),
    [
        (1, 1, "/data", ["/data"]),
        (1, 4, "/data{0...3}", ["/data0", "/data1", "/data2", "/data3"]),
        (3, 1, "http://minio-{0...2}:9000/data", ["/data"]),
        (3, 2, "http://minio-{0...2}:9000/data{0...1}", ["/data0", "/data1"]),
    ],
)
def test_every_node_runs_the_same_server_line_and_serves_the_drives_it_names(nodes, drives, endpoints, paths):
    args = server_args(layout(nodes, drives))
    assert args == ["server", endpoints, "--address", ":9000", "--console-address", ":9001"]
    assert minio_drive_paths(["minio", *args]) == paths
    assert expand_ellipses(endpoints)[-1].endswith(paths[-1])
    assert len(expand_ellipses(endpoints)) == nodes * drives


def test_layout_bounds_and_prod_defaults():
    assert (layout(1, 1).nodes, layout(1, 1).drives_per_node) == (1, 1)
    assert layout(4, 4).drives_per_node == 4  # 16 drives: one set, MinIO's largest
    with pytest.raises(ValueError, match=r"at most 16 drives in all .* got 3 x 6 = 18"):
        layout(3, 6)
    prod = ObjectStorageSettings.model_validate({}, context={"environment": "prod"})
    assert (prod.nodes, prod.drives_per_node) == (3, 2)
    # What a prod stack file sets wins over the prod default.
    single = ObjectStorageSettings.model_validate({"nodes": 1}, context={"environment": "prod"})
    assert (single.nodes, single.drives_per_node) == (1, 2)


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"nodes": 0}, "rag-infra:neon.objectStorage.nodes must be a whole number >= 1 and <= 16, got 0"),
        (
            {"nodes": 5, "drivesPerNode": 4},
            "rag-infra:neon.objectStorage.drivesPerNode must give at most 16 drives in all "
            "(nodes x drivesPerNode), got 5 x 4 = 20",
        ),
    ],
)
def test_a_bad_layout_names_its_key(store, message):
    with pytest.raises(SettingsError) as caught:
        parse_settings({"neon": {"objectStorage": store}}, stack="dev")
    assert message in str(caught.value)


def test_prod_stacks_get_the_distributed_store():
    prod = parse_settings({"environment": "prod", "kong": {"cors": {"origins": ["https://a"]}}}, stack="p")
    assert (prod.neon.object_storage.nodes, prod.neon.object_storage.drives_per_node) == (3, 2)
    assert parse_settings({}, stack="dev").neon.object_storage.nodes == 1


# -- the nodes under mocks ------------------------------------------------------------------


def test_prod_nodes_pinned_one_per_host_each_with_its_own_volumes(program):
    run = program("prod")
    hosts = [run.named(f"docker-host-{i}").inputs["host"] for i in range(3)]
    volumes = set()
    for index in range(3):
        node = run.workload(f"rag-infra-prod-minio-{index}")
        assert node.host == hosts[index]
        mounted = {v["containerPath"]: v["volumeName"] for v in node.inputs["volumes"]}
        assert set(mounted) == {"/data0", "/data1"}
        volumes |= set(mounted.values())
        # Found by the others under its own name (with the port --address gives), by clients
        # under the shared one.
        assert node.inputs["networksAdvanced"][0]["aliases"] == [f"minio-{index}", "minio"]
        service = run.service(f"rag-infra-prod-minio-{index}")
        assert service.plain("taskSpec")["containerSpec"]["hostname"] == f"minio-{index}"
        assert node.inputs["command"] == server_args(layout(3, 2))
        # Alive before the store has formed: the nodes are created one after the other.
        assert node.inputs["healthcheck"]["tests"][-1] == "http://127.0.0.1:9000/minio/health/live"
        assert service.plain("updateConfig")["order"] == "stop-first"
    assert len(volumes) == 6


def test_dev_keeps_one_server_on_one_volume(program):
    node = program("dev").workload("rag-infra-dev-minio")
    assert node.inputs["command"] == ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
    assert node.inputs["networksAdvanced"][0]["aliases"] == ["minio"]
    assert [v["containerPath"] for v in node.inputs["volumes"]] == ["/data"]


def test_gates_reach_each_node_through_operator_access(program):
    run = program("prod")
    gates = [run.named(f"neon-storage-minio-{i}-ready") for i in range(3)]
    assert [g.inputs["index"] for g in gates] == [0, 1, 2]
    assert all(g.inputs["urls"] == [f"http://127.0.0.1:{9000 + i}" for i in range(3)] for g in gates)


# -- MinioReady against the fake deployment -------------------------------------------------


@pytest.fixture
def store():
    with FakeMinioCluster(nodes=3, drives=2) as cluster:
        cluster.form()
        yield cluster


@pytest.fixture
def provider():
    return roundtrip(MinioReadyProvider())


def props(store, index: int = 1, **changes) -> dict:
    return {"urls": store.urls, "index": index, "revision": "r1", "timeout": 1.0, "interval": 0.1} | changes


def test_a_new_node_passes_once_alive_though_the_store_has_not_formed():
    with FakeMinioCluster(nodes=3, drives=2) as fresh:
        provider = roundtrip(MinioReadyProvider())
        assert provider.create(props(fresh, index=0)).outs["seen"] == "MinIO node 0 answers"
        # An update (a rollout) of the same node would wait: no write quorum without a store.
        with pytest.raises(MinioGateError, match=r"node 0 sees no write quorum yet \(503, offline\)"):
            provider.update("minio-0", props(fresh, index=0), props(fresh, index=0))


def test_a_node_that_does_not_answer_times_out_naming_it(store, provider):
    store.set_down(1)
    started = time.monotonic()
    with pytest.raises(MinioGateError, match=r"timed out after 1s waiting for MinIO node 1 .* not answer"):
        provider.create(props(store))
    assert time.monotonic() - started < 5


def test_after_a_rollout_the_node_passes_back_in_a_whole_store(store, provider):
    outs = provider.update("minio-1", props(store), props(store, revision="r2")).outs
    assert outs["seen"] == "MinIO node 1 is back with a write quorum, every node online"


def test_after_a_rollout_another_node_down_holds_the_next_one_back(store, provider):
    """4 of 6 drives are a write quorum, but the next rollout would take two more away."""
    store.set_down(2)
    with pytest.raises(MinioGateError, match=r"MinIO node 2 is not online \(ConnectionError\): rolling"):
        provider.update("minio-1", props(store), props(store))


def test_after_a_rollout_a_node_still_rejoining_holds_the_next_one_back(store, provider):
    """Node 2 answers, but as a server that has not rejoined the store (`offline`): its drives
    do not count yet, and the next rollout would leave 2 of 6."""
    store.starting.add(2)
    with pytest.raises(MinioGateError, match=r"MinIO node 2 is not online \(offline\): rolling"):
        provider.update("minio-1", props(store), props(store))


def test_a_node_that_comes_back_while_the_gate_waits_passes(store, provider):
    store.set_down(2)
    threading.Timer(0.3, store.set_down, args=(2, False)).start()
    outs = provider.update("minio-1", props(store), props(store, timeout=5.0)).outs
    assert outs["seen"].startswith("MinIO node 1 is back")


def test_without_a_write_quorum_the_node_is_not_back(store, provider):
    store.set_down(0)
    store.set_down(2)  # 2 of 6 drives online: below the write quorum of 4
    with pytest.raises(MinioGateError, match=r"node 1 sees no write quorum yet \(503\)"):
        provider.update("minio-1", props(store), props(store))


def test_it_runs_again_after_every_rollout_of_its_node_only(store, provider):
    same = props(store)
    assert not provider.diff("minio-1", same, dict(same)).changes
    assert provider.diff("minio-1", same, props(store, revision="r2")).changes
    assert not provider.diff("minio-1", same, props(store, timeout=9.0)).changes


# -- the layout guard -----------------------------------------------------------------------


def test_a_changed_layout_is_refused_before_the_store_is_touched():
    provider = roundtrip(ObjectStorageLayoutProvider())
    created = provider.create({"layout": layout_text(1, 1)}).outs
    assert not provider.diff("layout", created, {"layout": layout_text(1, 1)}).changes
    changed = {"layout": layout_text(3, 2)}
    assert provider.diff("layout", created, changed).changes
    with pytest.raises(
        ObjectStorageLayoutError, match=r"changed from 1 node\(s\) x 1 drive\(s\) to 3 node\(s\) x 2"
    ):
        provider.update("layout", created, changed)
