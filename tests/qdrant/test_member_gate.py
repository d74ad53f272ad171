"""QdrantMemberReady, the gate between two Qdrant nodes' rollouts, against the strict fake:
it passes only once the node's peer is in the cluster with consensus working and a leader,
and every replica it holds `Active`; it runs again when its service's revision changes."""

from __future__ import annotations

import pytest

from components.qdrant.collection import QdrantApiError
from components.qdrant.member_gate import QdrantMemberReadyProvider
from tests.support.dynamic import roundtrip
from tests.support.fake_qdrant import PEER_IDS, FakeQdrantCluster
from tests.verify.test_verify import create_collection

NODE_2 = "http://qdrant-2:6335"


def props(url: str, peer_uri: str = NODE_2, **changes) -> dict:
    return {
        "url": url,
        "api_key": "test-key",
        "peer_uri": peer_uri,
        "revision": "r1",
        "timeout": 1.5,
    } | changes


@pytest.fixture
def cluster():
    with FakeQdrantCluster() as fake:
        create_collection(fake)
        yield fake


@pytest.fixture
def provider():
    return roundtrip(QdrantMemberReadyProvider())


def test_a_joined_node_with_every_replica_active_passes(cluster, provider):
    result = provider.create(props(cluster.url))
    assert (
        f"peer {PEER_IDS[2]} at {NODE_2} is in the cluster with every replica Active" in result.outs["seen"]
    )


def test_a_node_that_has_not_joined_yet_fails_naming_it(cluster, provider):
    cluster.peers_joined = 2
    with pytest.raises(QdrantApiError, match="no peer at http://qdrant-2:6335 in the cluster yet"):
        provider.create(props(cluster.url))


def test_a_node_whose_replicas_are_not_active_yet_holds_the_next_one_back(cluster, provider):
    cluster.dead_peers.add(PEER_IDS[2])  # its replicas read Dead
    with pytest.raises(QdrantApiError, match=r"docs_index_mxbai: shard \d+ on peer .* is Dead"):
        provider.create(props(cluster.url))
    # Another node's replicas being down is not this gate's business: node 0 passes.
    assert provider.create(props(cluster.url, "http://qdrant-0:6335")).outs["seen"]


@pytest.mark.parametrize(("consensus", "leader"), [("stopped", PEER_IDS[0]), ("working", None)])
def test_no_consensus_or_no_leader_fails(cluster, provider, consensus, leader):
    cluster.consensus, cluster.leader = consensus, leader
    with pytest.raises(QdrantApiError, match=r"consensus is stopped|no leader"):
        provider.create(props(cluster.url))


def test_a_new_revision_of_the_service_runs_the_gate_again_and_nothing_else_does(cluster, provider):
    old = props(cluster.url)
    assert provider.diff("id", old, props(cluster.url, revision="r2")).changes
    assert not provider.diff("id", old, props(cluster.url)).changes
    cluster.dead_peers.add(PEER_IDS[2])
    with pytest.raises(QdrantApiError, match="is Dead"):
        provider.update("id", old, props(cluster.url, revision="r2"))
