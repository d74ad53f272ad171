"""Qdrant backups and restore (components/qdrant/snapshots.py) against a 3-node fake of the
v1.19 snapshot API and an S3 store that checks every signature with botocore."""

from __future__ import annotations

import ast
import datetime
import json
import sys
from pathlib import Path

import pytest
import requests

from components.platform import objectstore
from components.qdrant import snapshots
from components.qdrant.snapshots import S3, BackupError, Qdrant, backup, complete_backups, restore
from tests.support.fake_qdrant_snapshots import FakeQdrantNodes
from tests.support.fake_s3 import FakeS3

KEY = "qdrant-key"
DOCS = "docs_index_mxbai"


def at(hour: int) -> datetime.datetime:
    return datetime.datetime(2026, 11, 27, hour, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def stack():
    with FakeQdrantNodes(3, api_key=KEY) as nodes, FakeS3("neon", "minio-secret") as store:
        nodes.create(DOCS, shard_number=3, replication_factor=2)
        nodes.upsert(DOCS, {i: {"text": f"chunk {i}"} for i in range(30)})
        s3 = S3(store.url, "backups", "neon", "minio-secret")
        s3.ensure_bucket()
        yield nodes, store, Qdrant(nodes.urls, KEY), s3


def test_a_backup_holds_each_nodes_snapshot_and_a_manifest_and_leaves_no_copy_on_the_nodes(stack):
    nodes, store, qdrant, s3 = stack
    manifest = backup(qdrant, s3, [DOCS], keep=3, now=at(3), log=lambda _: None)
    objects = store.buckets["backups"]
    assert sorted(objects) == [
        "qdrant/20261127T030000Z/docs_index_mxbai/qdrant-0.snapshot",
        "qdrant/20261127T030000Z/docs_index_mxbai/qdrant-1.snapshot",
        "qdrant/20261127T030000Z/docs_index_mxbai/qdrant-2.snapshot",
        "qdrant/20261127T030000Z/manifest.json",
    ]
    assert json.loads(objects["qdrant/20261127T030000Z/manifest.json"]) == manifest
    assert manifest["points"] == {DOCS: 30} and manifest["nodes"] == 3
    # Each node's entry names its local shards and their points (2 of 3 shards each).
    for index, entry in enumerate(manifest["snapshots"]):
        assert entry["node"] == f"qdrant-{index}" and entry["peer_id"] == 1000 + index
        assert entry["snapshot"].startswith(f"{DOCS}-{1000 + index}-")
        assert [s["shard_id"] for s in entry["shards"]] == nodes.local_shards(DOCS, index)
        assert sum(s["points_count"] for s in entry["shards"]) == 20
    assert all(not taken.get(DOCS) for taken in nodes.snapshots)


def test_a_dropped_collection_comes_back_whole_from_the_latest_backup(stack):
    nodes, store, qdrant, s3 = stack
    backup(qdrant, s3, [DOCS], keep=3, now=at(3), log=lambda _: None)
    original = nodes.points(DOCS)
    del nodes.collections[DOCS]
    result = restore(qdrant, s3, DOCS, log=lambda _: None)
    assert result == {"time": "20261127T030000Z", "collection": DOCS, "points": 30}
    assert nodes.points(DOCS) == original
    # Each node got its own snapshot, by a presigned URL and with its checksum.
    recovers = [path for method, path in store.requests if method == "GET" and "X-Amz-Signature" in path]
    assert len(recovers) == 3


def test_a_bad_write_is_undone_and_the_chosen_backup_is_used(stack):
    nodes, _, qdrant, s3 = stack
    backup(qdrant, s3, [DOCS], keep=3, now=at(3), log=lambda _: None)
    nodes.upsert(DOCS, {i: {"text": "more"} for i in range(30, 40)})
    backup(qdrant, s3, [DOCS], keep=3, now=at(4), log=lambda _: None)
    nodes.upsert(DOCS, {i: {"text": "overwritten"} for i in range(40)})
    restore(qdrant, s3, DOCS, "20261127T030000Z", log=lambda _: None)
    # Every shard is back at 03:00: the overwrite is undone, and the ten points added after it
    # went with their shards' later state.
    assert nodes.points(DOCS) == {i: {"text": f"chunk {i}"} for i in range(30)}
    with pytest.raises(
        BackupError,
        match=r"no complete backup at 20261127T050000Z; there are: 20261127T030000Z, 20261127T040000Z",
    ):
        restore(qdrant, s3, DOCS, "20261127T050000Z", log=lambda _: None)


def test_restore_refuses_counts_it_cannot_match(stack):
    _, store, qdrant, s3 = stack
    backup(qdrant, s3, [DOCS], keep=3, now=at(3), log=lambda _: None)
    manifest_key = "qdrant/20261127T030000Z/manifest.json"
    manifest = json.loads(store.buckets["backups"][manifest_key])
    manifest["points"][DOCS] = 31  # one point more than the snapshots hold
    store.buckets["backups"][manifest_key] = json.dumps(manifest).encode()
    with pytest.raises(
        BackupError, match=f"restored {DOCS} holds 30 point.s.; the backup of 20261127T030000Z had 31"
    ):
        restore(qdrant, s3, DOCS, log=lambda _: None)


def test_restore_refuses_another_cluster_size_before_touching_a_node(stack):
    _, store, qdrant, s3 = stack
    backup(qdrant, s3, [DOCS], keep=3, now=at(3), log=lambda _: None)
    before = len(store.requests)
    smaller = Qdrant(qdrant.nodes[:2], KEY)
    with pytest.raises(BackupError, match=r"holds 3 node snapshot\(s\) of 3 node\(s\); the cluster has 2"):
        restore(smaller, s3, DOCS, log=lambda _: None)
    assert not [r for r in store.requests[before:] if "X-Amz-Signature" in r[1]]
    with pytest.raises(BackupError, match="has no snapshot of collection other"):
        restore(qdrant, s3, "other", log=lambda _: None)


def test_a_snapshot_changed_in_storage_fails_its_checksum_on_the_node(stack):
    _, store, qdrant, s3 = stack
    backup(qdrant, s3, [DOCS], keep=3, now=at(3), log=lambda _: None)
    key = "qdrant/20261127T030000Z/docs_index_mxbai/qdrant-1.snapshot"
    store.buckets["backups"][key] = store.buckets["backups"][key].replace(b"chunk", b"chonk")
    with pytest.raises(BackupError, match="HTTP 400: Wrong input: Snapshot checksum mismatch"):
        restore(qdrant, s3, DOCS, log=lambda _: None)


def test_retention_keeps_the_last_n_and_an_unfinished_backup_is_never_restored(stack):
    nodes, store, qdrant, s3 = stack
    for hour in (1, 2, 3):
        backup(qdrant, s3, [DOCS], keep=2, now=at(hour), log=lambda _: None)
    assert complete_backups(s3) == ["20261127T020000Z", "20261127T030000Z"]
    assert not [k for k in store.buckets["backups"] if k.startswith("qdrant/20261127T010000Z/")]
    # A backup that fails on a node stops before its manifest.
    nodes.servers[2].shutdown()
    nodes.servers[2].server_close()  # its port closed: connections are refused
    with pytest.raises(OSError):
        backup(qdrant, s3, [DOCS], keep=2, now=at(4), log=lambda _: None)
    assert "qdrant/20261127T040000Z/manifest.json" not in store.buckets["backups"]
    assert complete_backups(s3)[-1] == "20261127T030000Z"


def test_wrong_credentials_are_refused_by_the_store_and_the_nodes(stack):
    _, _, qdrant, s3 = stack
    with pytest.raises(BackupError, match="SignatureDoesNotMatch"):
        backup(qdrant, S3(s3.endpoint, s3.bucket, "neon", "wrong"), [DOCS], keep=2, log=lambda _: None)
    with pytest.raises(BackupError, match="HTTP 401"):
        backup(Qdrant(qdrant.nodes, "wrong"), s3, [DOCS], keep=2, log=lambda _: None)


def test_the_fake_cluster_of_the_e2e_stand_in_speaks_the_same_api():
    """The Qdrant stand-in of the e2e stack (tests/support/fake_qdrant.py, one store behind
    every node) backs up and restores through the same calls."""
    from tests.support.fake_qdrant import FakeQdrantCluster

    with FakeQdrantCluster(api_key=KEY) as cluster, FakeS3("neon", "minio-secret") as store:
        headers = {"api-key": KEY}
        body = {"vectors": {"size": 2, "distance": "Cosine"}, "shard_number": 3, "replication_factor": 2}
        assert requests.put(f"{cluster.url}/collections/{DOCS}", json=body, headers=headers, timeout=5).ok
        points = {"points": [{"id": i, "vector": [1, 0]} for i in range(5)]}
        assert requests.put(
            f"{cluster.url}/collections/{DOCS}/points", json=points, headers=headers, timeout=5
        ).ok
        s3 = S3(store.url, "b", "neon", "minio-secret")
        s3.ensure_bucket()
        qdrant = Qdrant([cluster.url] * 3, KEY)
        backup(qdrant, s3, [DOCS], keep=2, log=lambda _: None)
        assert requests.delete(f"{cluster.url}/collections/{DOCS}", headers=headers, timeout=5).ok
        assert restore(qdrant, s3, DOCS, log=lambda _: None)["points"] == 5
        assert not cluster.snapshots[DOCS]  # none left on the nodes


@pytest.mark.parametrize("module", [snapshots, objectstore])
def test_the_module_runs_on_the_standard_library_alone(module):
    """The backup service runs the program in the official python image, with nothing installed:
    the standard library, and the object storage client mounted beside it."""
    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    }
    ours = {name for name in imported if name.split(".")[0] == "components"}
    assert ours <= {objectstore.__name__} - {module.__name__}
    stdlib = {name.split(".")[0] for name in imported - ours}
    assert stdlib <= set(sys.stdlib_module_names), stdlib - set(sys.stdlib_module_names)
