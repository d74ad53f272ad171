"""QdrantCollection's provider against a fake cluster API that follows facts/qdrant.md."""

from __future__ import annotations

import threading

import pytest

from components.qdrant.collection import QdrantApiError, QdrantCollectionProvider
from tests.support.dynamic import roundtrip
from tests.support.fake_qdrant import PEER_IDS, FakeQdrantCluster


def props(url: str, **changes) -> dict:
    base = {
        "url": url,
        "api_key": "test-key",
        "name": "docs_index_mxbai",
        "vector_size": 1024,
        "distance": "Cosine",
        "shard_number": 3,
        "replication_factor": 2,
        "write_consistency_factor": 1,
        "expected_peers": 3,
        "cluster_timeout": 5.0,
        "replica_timeout": 3.0,
    }
    return {**base, **changes}


@pytest.fixture
def cluster():
    with FakeQdrantCluster() as fake:
        yield fake


@pytest.fixture
def provider():
    # Every test drives the provider the engine would get: after dill and back.
    return roundtrip(QdrantCollectionProvider())


def test_creates_with_ha_parameters_and_reports_placement(cluster, provider):
    result = provider.create(props(cluster.url))
    put = [r for r in cluster.writes() if r[0] == "PUT"]
    assert put == [
        (
            "PUT",
            "/collections/docs_index_mxbai",
            {
                "vectors": {"size": 1024, "distance": "Cosine"},
                "shard_number": 3,
                "replication_factor": 2,
                "write_consistency_factor": 1,
            },
        )
    ]
    assert result.id == "docs_index_mxbai"
    assert result.outs["shard_count"] == 3
    assert result.outs["replicas"] == {
        "0": sorted([PEER_IDS[0], PEER_IDS[1]]),
        "1": sorted([PEER_IDS[1], PEER_IDS[2]]),
        "2": sorted([PEER_IDS[2], PEER_IDS[0]]),
    }
    assert result.outs["under_replicated_shards"] == []


def test_waits_for_all_peers_before_creating(cluster, provider):
    cluster.peers_joined = 1
    cluster.leader = None

    def join_later():
        cluster.peers_joined = 3
        cluster.leader = PEER_IDS[0]

    timer = threading.Timer(1.5, join_later)
    timer.start()
    provider.create(props(cluster.url))
    cluster_calls = [i for i, r in enumerate(cluster.requests) if r[1] == "/cluster"]
    first_put = next(i for i, r in enumerate(cluster.requests) if r[0] == "PUT")
    # Several polls happened, and the collection was created only after the last one.
    assert len(cluster_calls) >= 2
    assert first_put > cluster_calls[-1]


def test_gives_up_on_a_cluster_without_leader_and_writes_nothing(cluster, provider):
    cluster.leader = None
    with pytest.raises(QdrantApiError, match=r"3 Qdrant peers and a leader.*leader=None"):
        provider.create(props(cluster.url, cluster_timeout=1.5))
    assert cluster.writes() == []


def test_refuses_success_while_a_replica_is_dead(cluster, provider):
    cluster.forced_states[(1, PEER_IDS[2])] = "Dead"
    with pytest.raises(QdrantApiError) as err:
        provider.create(props(cluster.url, replica_timeout=1.5))
    assert f"shard 1 on peer {PEER_IDS[2]} is Dead" in str(err.value)


def test_a_partial_replica_that_recovers_is_waited_for(cluster, provider):
    cluster.forced_states[(0, PEER_IDS[1])] = "Partial"
    threading.Timer(1.0, lambda: cluster.forced_states.clear()).start()
    result = provider.create(props(cluster.url))
    assert result.outs["shard_count"] == 3


def test_rerun_adopts_an_identical_collection(cluster, provider):
    provider.create(props(cluster.url))
    again = provider.create(props(cluster.url))
    assert [r[0] for r in cluster.writes()].count("PUT") == 1
    assert again.outs["shard_count"] == 3


def test_existing_collection_with_other_vector_size_is_not_touched(cluster, provider):
    provider.create(props(cluster.url, vector_size=768))
    writes_before = list(cluster.writes())
    with pytest.raises(QdrantApiError, match=r"vector_size is 768, config wants 1024"):
        provider.create(props(cluster.url))
    assert cluster.writes() == writes_before


def test_wrong_api_key_is_named(cluster, provider):
    with pytest.raises(QdrantApiError, match="API key was refused"):
        provider.create(props(cluster.url, api_key="wrong"))


@pytest.mark.parametrize(("key", "value"), [("vector_size", 768), ("shard_number", 6), ("distance", "Dot")])
def test_a_fixed_parameter_change_is_refused_at_preview_with_the_migration_path(provider, key, value):
    """Replacing the collection would drop every point, the migrated ones included."""
    old = props("http://x")
    with pytest.raises(QdrantApiError) as err:
        provider.diff("docs_index_mxbai", old, {**old, key: value})
    message = str(err.value)
    assert f"{key} {old[key]!r} -> {value!r} cannot change in place" in message
    assert "--collection docs_index_mxbai --target-collection <new>" in message
    same = provider.diff("docs_index_mxbai", old, dict(old))
    assert same.changes is False and same.replaces == []


def test_deleting_a_collection_that_holds_points_needs_the_opt_in(cluster, provider):
    provider.create(props(cluster.url))
    cluster.collections["docs_index_mxbai"]["points_count"] = 3087
    with pytest.raises(
        QdrantApiError, match=r"holds 3087 points; refusing to delete it.*deleteWithPoints: true"
    ):
        provider.delete("docs_index_mxbai", props(cluster.url))
    assert "docs_index_mxbai" in cluster.collections and not cluster.calls("DELETE")
    provider.delete("docs_index_mxbai", props(cluster.url, delete_with_points=True))
    assert "docs_index_mxbai" not in cluster.collections


def test_an_empty_collection_is_deleted_without_the_opt_in(cluster, provider):
    provider.create(props(cluster.url))
    provider.delete("docs_index_mxbai", props(cluster.url))
    assert "docs_index_mxbai" not in cluster.collections


def test_the_opt_in_is_an_update_only(provider):
    old = props("http://x")
    diff = provider.diff("docs_index_mxbai", old, {**old, "delete_with_points": True})
    assert diff.changes and diff.replaces == []


def test_changed_replication_factor_is_an_update_and_reported(cluster, provider, monkeypatch):
    warnings = []
    monkeypatch.setattr("pulumi.log.warn", lambda msg, *a, **k: warnings.append(msg))
    monkeypatch.setattr("pulumi.log.info", lambda msg, *a, **k: None)
    old = props(cluster.url, replication_factor=1)
    provider.create(old)
    new = props(cluster.url, replication_factor=3)
    diff = provider.diff("docs_index_mxbai", old, new)
    assert diff.changes is True and diff.replaces == []
    # The fake, like self-hosted Qdrant, does not add replicas by itself: placement stays at 1.
    cluster.collections["docs_index_mxbai"]["config"]["params"]["replication_factor"] = 1
    monkeypatch.setattr(cluster, "collection_cluster", _frozen_placement(cluster, replicas=1))
    result = provider.update("docs_index_mxbai", old, new)
    patch = [r for r in cluster.writes() if r[0] == "PATCH"][-1]
    assert patch[2] == {"params": {"replication_factor": 3, "write_consistency_factor": 1}}
    assert result.outs["under_replicated_shards"] == [0, 1, 2]
    assert result.outs["replication_factor"] == 3 and result.outs["vector_size"] == 1024
    assert any("fewer than 3 replicas" in w and "replicate_shard" in w for w in warnings)


def _frozen_placement(cluster, replicas: int):
    original = cluster.collection_cluster

    def placement(name):
        params = cluster.collections[name]["config"]["params"]
        saved = params["replication_factor"]
        params["replication_factor"] = replicas
        try:
            return original(name)
        finally:
            params["replication_factor"] = saved

    return placement


def test_delete_removes_the_collection_and_tolerates_absence(cluster, provider):
    provider.create(props(cluster.url))
    provider.delete("docs_index_mxbai", props(cluster.url))
    assert "docs_index_mxbai" not in cluster.collections
    provider.delete("docs_index_mxbai", props(cluster.url))


def test_peers_joining_one_by_one_are_all_waited_for(cluster, provider):
    """The leader is there from the start and peers join late: creating before the last one
    joined would place every replica on the first nodes."""
    cluster.peers_joined = 1
    cluster.join_on_poll = True
    result = provider.create(props(cluster.url))
    assert cluster.peers_at_create["docs_index_mxbai"] == 3
    assert {peer for peers in result.outs["replicas"].values() for peer in peers} == set(PEER_IDS)


@pytest.mark.parametrize(
    ("consensus", "expected"),
    [("stopped", "consensus=stopped"), ("stopped_with_err", "consensus=stopped_with_err")],
)
def test_a_cluster_whose_consensus_stopped_gets_nothing_written(cluster, provider, consensus, expected):
    cluster.consensus = consensus
    with pytest.raises(QdrantApiError, match=expected):
        provider.create(props(cluster.url, cluster_timeout=1.5))
    assert cluster.writes() == []


def test_a_partial_replica_that_never_recovers_is_not_healthy(cluster, provider):
    cluster.forced_states[(2, PEER_IDS[0])] = "Partial"
    with pytest.raises(QdrantApiError) as err:
        provider.create(props(cluster.url, replica_timeout=1.5))
    assert f"shard 2 on peer {PEER_IDS[0]} is Partial" in str(err.value)


def test_a_shard_that_no_node_reports_is_not_healthy(cluster, provider):
    cluster.lost_shards = {1}
    with pytest.raises(QdrantApiError, match=r"shards \[1\] have no replica"):
        provider.create(props(cluster.url, replica_timeout=1.5))


def test_replicas_placed_on_a_dead_peer_are_named(cluster, provider):
    """Qdrant places replicas on every known peer, alive or not; the dead one's stay
    Initializing and the wait names them."""
    cluster.dead_peers = {PEER_IDS[2]}
    with pytest.raises(QdrantApiError) as err:
        provider.create(props(cluster.url, replica_timeout=1.5))
    assert f"on peer {PEER_IDS[2]} is Initializing" in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("distance", "Dot", "distance is 'Dot'"), ("shard_number", 6, "shard_number is 6")],
)
def test_an_existing_collection_with_other_immutable_parameters_is_refused(
    cluster, provider, key, value, expected
):
    provider.create(props(cluster.url, **{key: value}))
    writes_before = list(cluster.writes())
    with pytest.raises(QdrantApiError, match=expected):
        provider.create(props(cluster.url))
    assert cluster.writes() == writes_before


def test_patch_cannot_change_immutable_parameters(cluster, provider):
    """Qdrant ignores shard_number and vector changes in a PATCH: a provider that tried an
    in-place change would end green with the old layout."""
    provider.create(props(cluster.url))
    status, _ = cluster.handle(
        "PATCH", "/collections/docs_index_mxbai", {"params": {"shard_number": 6}}, {"api-key": "test-key"}
    )
    assert status == 200
    assert cluster.collections["docs_index_mxbai"]["config"]["params"]["shard_number"] == 3


def test_the_fake_refuses_what_qdrant_refuses(cluster):
    key = {"api-key": "test-key"}
    bad = [
        ({"vectors": {"size": 70000, "distance": "Cosine"}}, 422),
        ({"vectors": {"size": 8, "distance": "cosine"}}, 400),
        ({"vectors": {"size": 8, "distance": "Cosine"}, "replication_factor": 0}, 422),
    ]
    for body, status in bad:
        assert cluster.handle("PUT", "/collections/c", body, key)[0] == status
    assert cluster.handle("PUT", "/collections/c", {"vectors": {"size": 8, "distance": "Dot"}}, key)[0] == 200
    assert cluster.handle("PUT", "/collections/c", {"vectors": {"size": 8, "distance": "Dot"}}, key)[0] == 409


def test_concurrent_requests_are_answered_together(cluster, provider):
    """The provider runs once per collection, in parallel under `pulumi up`."""
    errors = []

    def create(name: str) -> None:
        try:
            provider.create(props(cluster.url, name=name))
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=create, args=(f"c{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and set(cluster.collections) == {"c0", "c1", "c2", "c3"}
