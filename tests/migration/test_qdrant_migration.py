"""Single-node -> cluster migration on qdrant-client local-mode stores (and the fake cluster API
for what local mode cannot do)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from migration.qdrant.engine import (
    OFFSETS_COLLECTION,
    QdrantMigrationError,
    QdrantMigrationReport,
    _payload_digest,
    _Reservoir,
    migrate_collection,
    open_client,
    verify,
)
from migration.qdrant.resource import QdrantMigrationProvider
from tests.harness import ROOT, contains_secret_wrapper
from tests.support.certificates import tls_listener
from tests.support.dynamic import roundtrip
from tests.support.fake_qdrant import FakeQdrantCluster
from tests.support.nginx import free_port
from tests.support.qdrant_data import make_store, snapshot

COLLECTION = "docs_index_mxbai"


@pytest.fixture(scope="session")
def plan_store(tmp_path_factory):
    """The plan's collection: 3,087 points of 1024 dimensions with payloads, built once."""
    path = tmp_path_factory.mktemp("qdrant-plan") / "store"
    make_store(path)
    return path


@pytest.fixture
def source(plan_store, tmp_path):
    copy = tmp_path / "source"
    shutil.copytree(plan_store, copy)
    return copy


def count(path, collection=COLLECTION) -> int:
    client = QdrantClient(path=str(path))
    try:
        return client.count(collection, exact=True).count if client.collection_exists(collection) else 0
    finally:
        client.close()


def collections(path) -> set[str]:
    client = QdrantClient(path=str(path))
    try:
        return {c.name for c in client.get_collections().collections}
    finally:
        client.close()


def start_cli(source, target, batch_size: str) -> subprocess.Popen:
    """The command line copying COLLECTION in the background, its progress readable on stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "migration.qdrant", "--source", str(source), "--target", str(target),
         "--collection", COLLECTION, "--batch-size", batch_size],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migration.qdrant", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_the_plans_collection_migrates_and_verifies(source, tmp_path):
    before = snapshot(source, COLLECTION)
    target = tmp_path / "target"
    report = migrate_collection(str(source), str(target), COLLECTION, shard_number=3, replication_factor=2)
    assert report.ok and report.created_target
    assert report.source_points == report.target_points == report.copied_points == 3087
    assert report.sample_checked == 100 and report.sample_mismatches == 0
    assert report.recall_at_10 == 1.0
    assert snapshot(source, COLLECTION) == before  # the source was only read
    assert collections(target) == {COLLECTION}  # the checkpoint was cleaned up after verification
    client = QdrantClient(path=str(target))
    try:
        point = client.retrieve(COLLECTION, [42], with_payload=True, with_vectors=True)[0]
        assert point.payload == {"source_path": "docs/page-42.md", "chunk_index": 0, "tags": ["rag"]}
        assert len(point.vector) == 1024
    finally:
        client.close()


def test_rerun_is_a_no_op_that_verifies(source, tmp_path):
    target = tmp_path / "target"
    migrate_collection(str(source), str(target), COLLECTION, batch_size=1000)
    again = migrate_collection(str(source), str(target), COLLECTION, batch_size=1000)
    assert again.ok and again.copied_points == 0 and again.batches == 0 and not again.created_target


def test_sigkill_part_way_then_resume(source, tmp_path):
    target = tmp_path / "target"
    before = snapshot(source, COLLECTION)
    process = start_cli(source, target, "100")
    for lines, line in enumerate(process.stderr, start=1):
        if "points (" in line and lines >= 6:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    partial = count(target)
    assert 0 < partial < 3087
    assert OFFSETS_COLLECTION in collections(target)  # the resume point is there
    resumed = run_cli(
        "--source",
        str(source),
        "--target",
        str(target),
        "--collection",
        COLLECTION,
        "--batch-size",
        "100",
        "--json",
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["ok"] and report["target_points"] == 3087
    assert report["copied_points"] <= 3087 - partial + 100  # it resumed; at most one batch again
    assert collections(target) == {COLLECTION}
    assert snapshot(source, COLLECTION) == before


def test_named_and_sparse_vectors_are_kept(tmp_path):
    source, target = tmp_path / "named-source", tmp_path / "named-target"
    make_store(source, points=400, named=True)
    report = migrate_collection(str(source), str(target), COLLECTION)
    assert report.ok and report.target_points == 400
    client = QdrantClient(path=str(target))
    try:
        params = client.get_collection(COLLECTION).config.params
        assert set(params.vectors) == {"text", "title"} and set(params.sparse_vectors) == {"keywords"}
        point = client.retrieve(COLLECTION, [7], with_vectors=True)[0]
        assert set(point.vector) == {"text", "title", "keywords"}
        assert point.vector["keywords"].indices == [7, 100]
    finally:
        client.close()


def test_progress_goes_to_stderr(source, tmp_path):
    result = run_cli(
        "--source",
        str(source),
        "--target",
        str(tmp_path / "t"),
        "--collection",
        COLLECTION,
        "--batch-size",
        "1000",
    )
    assert result.returncode == 0, result.stderr
    assert f"{COLLECTION}: 3087/3087 points (100.0%)" in result.stderr and "points/s" in result.stderr
    assert "recall@10 1.0" in result.stderr


def one_line(result) -> str:
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_unreachable_source(tmp_path):
    line = one_line(
        run_cli(
            "--source",
            f"http://127.0.0.1:{free_port()}",
            "--target",
            str(tmp_path / "t"),
            "--collection",
            COLLECTION,
        )
    )
    assert line.startswith("migration.qdrant: source: ") and "cannot reach Qdrant" in line
    assert not (tmp_path / "t").exists() or collections(tmp_path / "t") == set()


def test_wrong_api_key(tmp_path):
    with FakeQdrantCluster(api_key="right-key") as fake:
        env = {"QDRANT_SOURCE_API_KEY": "wrong-key", "PATH": "/usr/bin:/bin"}
        result = run_cli(
            "--source", fake.url, "--target", str(tmp_path / "t"), "--collection", COLLECTION, env=env
        )
    line = one_line(result)
    assert "source: " in line and "the API key was refused (401)" in line
    assert "wrong-key" not in result.stderr


def test_missing_collection(source, tmp_path):
    line = one_line(run_cli("--source", str(source), "--target", str(tmp_path / "t"), "--collection", "nope"))
    assert line == "migration.qdrant: source: collection nope does not exist"
    assert collections(tmp_path / "t") == set()


def test_missing_source_store_is_not_created(tmp_path):
    line = one_line(
        run_cli(
            "--source", str(tmp_path / "absent"), "--target", str(tmp_path / "t"), "--collection", COLLECTION
        )
    )
    assert line == f"migration.qdrant: source: no Qdrant local-mode store at {tmp_path / 'absent'}"
    assert not (tmp_path / "absent").exists()


def test_mismatched_vector_size_writes_nothing(source, tmp_path):
    target = tmp_path / "t"
    client = QdrantClient(path=str(target))
    client.create_collection(
        COLLECTION, vectors_config=models.VectorParams(size=768, distance=models.Distance.COSINE)
    )
    client.close()
    line = one_line(run_cli("--source", str(source), "--target", str(target), "--collection", COLLECTION))
    assert "target: collection docs_index_mxbai has vectors ((default): size 768 Cosine)" in line
    assert "size 1024 Cosine" in line and line.endswith("refusing to write")
    assert collections(target) == {COLLECTION} and count(target) == 0


def test_target_holding_foreign_points_is_refused(source, tmp_path):
    target = tmp_path / "t"
    client = QdrantClient(path=str(target))
    client.create_collection(
        COLLECTION, vectors_config=models.VectorParams(size=1024, distance=models.Distance.COSINE)
    )
    client.upsert(COLLECTION, [models.PointStruct(id=999999, vector=[0.1] * 1024, payload={"x": 1})])
    client.close()
    with pytest.raises(
        QdrantMigrationError, match=r"already holds 1 points that this migration did not write"
    ):
        migrate_collection(str(source), str(target), COLLECTION)
    assert count(target) == 1


def test_dynamic_resource_after_serialization(source, tmp_path, monkeypatch):
    monkeypatch.setattr("pulumi.log.info", lambda *a, **k: None)
    provider = roundtrip(QdrantMigrationProvider())
    props = {
        "source_url": str(source),
        "source_api_key": "",
        "target_url": str(tmp_path / "t"),
        "target_api_key": "",
        "collection": COLLECTION,
        "target_collection": COLLECTION,
        "batch_size": 1000,
        "shard_number": None,
        "replication_factor": None,
        "write_consistency_factor": None,
    }
    created = provider.create(props)
    assert created.outs["report"]["ok"] and created.outs["report"]["target_points"] == 3087
    assert not provider.diff(created.id, created.outs, props).changes
    assert provider.diff(created.id, created.outs, {**props, "batch_size": 500}).changes
    updated = provider.update(created.id, created.outs, {**props, "batch_size": 500})
    assert updated.outs["report"]["copied_points"] == 0 and updated.outs["collection"] == COLLECTION
    provider.delete(created.id, updated.outs)
    assert count(tmp_path / "t") == 3087


MIGRATION = {"qdrant": {"enabled": True, "sourceUrl": "http://old-qdrant:6333", "collections": [COLLECTION]}}


def test_wired_after_the_ha_collection_with_secret_keys(program):
    run = program("prod", overrides={"migration": MIGRATION}, secret_overrides={"oldQdrantApiKey": "old-key"})
    migration = run.named(f"qdrant-migration-{COLLECTION}")
    assert run.depends_on[migration.name] == {f"qdrant-collection-{COLLECTION}"}
    assert contains_secret_wrapper(migration.inputs["source_api_key"])
    assert contains_secret_wrapper(migration.inputs["target_api_key"])
    assert migration.inputs["target_url"] == run.outputs["qdrantUrl"]
    assert "qdrantMigration" in run.outputs


def test_a_collection_without_ha_parameters_is_a_config_error(program):
    from components.settings import SettingsError

    bad = {"qdrant": {**MIGRATION["qdrant"], "collections": ["other"]}}
    with pytest.raises(
        SettingsError, match=r"migration.qdrant.collections\[0\] must also be listed in qdrant.collections"
    ):
        program("dev", overrides={"migration": bad})


# -- verification against wrong targets ---------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """A small collection and a verified copy of it, built once; tests tamper with copies."""
    base = tmp_path_factory.mktemp("qdrant-verify")
    make_store(base / "source", points=600, dim=32)
    assert migrate_collection(str(base / "source"), str(base / "target"), COLLECTION, batch_size=100).ok
    client = QdrantClient(path=str(base / "source"))
    try:
        reservoir = _Reservoir(100)  # the sample verify() draws in its pass over the source
        _payload_digest(client, COLLECTION, "source", reservoir)
        sample = reservoir.sample
    finally:
        client.close()
    return base, sample


def _verify_tampered(migrated, tmp_path, tamper) -> QdrantMigrationReport:
    base, _ = migrated
    shutil.copytree(base / "source", tmp_path / "source")
    shutil.copytree(base / "target", tmp_path / "target")
    target = QdrantClient(path=str(tmp_path / "target"))
    try:
        tamper(target)
    finally:
        target.close()
    source = QdrantClient(path=str(tmp_path / "source"))
    target = QdrantClient(path=str(tmp_path / "target"))
    try:
        report = QdrantMigrationReport(collection=COLLECTION, target_collection=COLLECTION)
        verify(source, target, COLLECTION, COLLECTION, report)
        return report
    finally:
        source.close()
        target.close()


def test_an_untouched_copy_verifies(migrated, tmp_path):
    report = _verify_tampered(migrated, tmp_path, lambda target: None)
    assert report.ok and report.differences == [] and report.sample_checked == 100


def test_a_changed_payload_in_the_sample_fails_naming_the_point(migrated, tmp_path):
    point = migrated[1][0]
    report = _verify_tampered(
        migrated, tmp_path, lambda t: t.set_payload(COLLECTION, {"doc_id": "changed"}, points=[point])
    )
    assert not report.ok and f"point {point}: payload differs" in report.differences


def test_a_changed_payload_outside_the_sample_fails(migrated, tmp_path):
    outside = next(i for i in range(600) if i not in set(migrated[1]))
    report = _verify_tampered(
        migrated, tmp_path, lambda t: t.set_payload(COLLECTION, {"doc_id": "changed"}, points=[outside])
    )
    assert not report.ok and "ids or payloads differ (digest of every point)" in report.differences


def test_a_changed_vector_fails_naming_the_point(migrated, tmp_path):
    point = migrated[1][1]

    def change_vector(target: QdrantClient) -> None:
        record = target.retrieve(COLLECTION, [point], with_payload=True)[0]
        flipped = [-1.0] + [0.5] * 31
        target.upsert(COLLECTION, [models.PointStruct(id=point, vector=flipped, payload=record.payload)])

    report = _verify_tampered(migrated, tmp_path, change_vector)
    assert not report.ok and f"point {point}: vector differs" in report.differences


def test_a_missing_point_fails_naming_the_counts(migrated, tmp_path):
    point = migrated[1][2]
    report = _verify_tampered(
        migrated, tmp_path, lambda t: t.delete(COLLECTION, models.PointIdsList(points=[point]))
    )
    assert not report.ok
    assert "points: source 600, target 599" in report.differences
    assert f"point {point}: missing in target" in report.differences


def test_recall_compares_the_target_not_the_source_with_itself(migrated, tmp_path):
    """Every vector of the target scrambled but the payloads kept: exact searches disagree."""
    rng = np.random.default_rng(9)

    def scramble(target: QdrantClient) -> None:
        records, _ = target.scroll(COLLECTION, limit=1000, with_payload=True)
        target.upsert(
            COLLECTION,
            [
                models.PointStruct(id=r.id, vector=rng.standard_normal(32).tolist(), payload=r.payload)
                for r in records
            ],
        )

    report = _verify_tampered(migrated, tmp_path, scramble)
    assert report.recall_at_10 < 0.5 and not report.ok


def test_a_rerun_on_a_tampered_copy_says_what_differs(migrated, tmp_path):
    base, sample = migrated
    shutil.copytree(base / "source", tmp_path / "source")
    shutil.copytree(base / "target", tmp_path / "target")
    client = QdrantClient(path=str(tmp_path / "target"))
    client.set_payload(COLLECTION, {"doc_id": "changed"}, points=[sample[0]])
    client.close()
    result = run_cli(
        "--source", str(tmp_path / "source"), "--target", str(tmp_path / "target"), "--collection", COLLECTION
    )
    assert result.returncode == 1
    assert f"verification failed for {COLLECTION}: ids or payloads differ" in result.stderr.splitlines()[-1]
    assert f"point {sample[0]}: payload differs" in result.stderr.splitlines()[-1]


# -- faults at every commit boundary ------------------------------------------------------------


class InjectedFaultError(RuntimeError):
    """Not transient: the migration stops at once, as after a crash."""


def _fail_at(monkeypatch, boundary: str, batch: int) -> None:
    """Fail right after batch `batch`'s data was upserted (before its checkpoint), or right
    after its checkpoint was saved (before the next batch's data)."""
    original = QdrantClient.upsert
    data_upserts = {"n": 0}

    def upsert(self, collection_name, points, *args, **kwargs):
        is_checkpoint = collection_name == OFFSETS_COLLECTION
        if boundary == "after-data" and is_checkpoint and data_upserts["n"] == batch:
            raise InjectedFaultError(f"fault after the data of batch {batch}")
        if boundary == "after-checkpoint" and not is_checkpoint and data_upserts["n"] == batch:
            raise InjectedFaultError(f"fault after the checkpoint of batch {batch}")
        result = original(self, collection_name, points, *args, **kwargs)
        if not is_checkpoint:
            data_upserts["n"] += 1
        return result

    monkeypatch.setattr(QdrantClient, "upsert", upsert)


@pytest.mark.parametrize("boundary", ["after-data", "after-checkpoint"])
@pytest.mark.parametrize("batch", [1, 3, 5])
def test_a_fault_at_a_commit_boundary_resumes_with_nothing_lost(
    migrated, tmp_path, monkeypatch, boundary, batch
):
    base, _ = migrated
    shutil.copytree(base / "source", tmp_path / "source")
    source, target = str(tmp_path / "source"), str(tmp_path / "target")
    with monkeypatch.context() as faulty:
        _fail_at(faulty, boundary, batch)
        with pytest.raises(QdrantMigrationError, match="fault after"):
            migrate_collection(source, target, COLLECTION, batch_size=100)
    assert 0 < count(target) < 600  # it really stopped part way
    resumed = migrate_collection(source, target, COLLECTION, batch_size=100)
    assert resumed.ok, resumed.differences
    assert count(target) == 600 and resumed.payloads_match
    assert OFFSETS_COLLECTION not in collections(target)


# -- locations that are neither URLs nor stores, gRPC errors, Ctrl-C -------------------------------


@pytest.mark.parametrize(
    "typo", ["http//127.0.0.1:6333", "http:/127.0.0.1:6333", "localhost:6333", "ftp://q:6333"]
)
def test_a_target_that_is_not_a_url_nor_a_store_is_refused(source, tmp_path, monkeypatch, typo):
    monkeypatch.chdir(tmp_path)
    result = run_cli("--source", str(source), "--target", typo, "--collection", COLLECTION)
    line = one_line(result)
    assert line.startswith(
        f"migration.qdrant: target: {typo!r} is not a URL (http://, https://, grpc://, grpcs://)"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "source"]  # no folder was created for the typo


def test_a_target_in_a_missing_folder_is_refused(source, tmp_path):
    line = one_line(
        run_cli("--source", str(source), "--target", str(tmp_path / "no" / "t"), "--collection", COLLECTION)
    )
    assert "is not a URL (http://, https://, grpc://, grpcs://), a local-mode store, nor a new folder" in line


def test_an_unreachable_grpc_target_is_one_readable_line(source):
    line = one_line(
        run_cli(
            "--source", str(source), "--target", f"grpc://127.0.0.1:{free_port()}", "--collection", COLLECTION
        )
    )
    assert line.startswith("migration.qdrant: target: ") and "gRPC UNAVAILABLE:" in line


def test_ctrl_c_stops_after_the_running_batch_and_a_rerun_resumes(source, tmp_path):
    target = tmp_path / "target"
    process = start_cli(source, target, "64")
    assert process.stderr is not None
    for line in process.stderr:
        if "points (" in line:
            process.send_signal(signal.SIGINT)
            break
    rest = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130, rest
    last = rest.strip().splitlines()[-1]
    assert (
        last.startswith("migration.qdrant: stopped between batches after ")
        and "run the same command again" in last
    )
    assert "Traceback" not in rest
    resumed = run_cli("--source", str(source), "--target", str(target), "--collection", COLLECTION, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["ok"] and count(target) == 3087


def test_an_https_target_is_checked_against_the_stacks_certificate(tmp_path, nginx):
    """The cluster behind TLS (prod): the client trusts the stack's certificate besides the
    system's CAs, and refuses the listener without it."""
    listing = '{"result": {"collections": []}, "status": "ok", "time": 0.0}'
    url, pem = tls_listener(tmp_path, nginx, body=listing)
    client = open_client(url, "key", "target", ca_certificate=pem)
    assert client.get_collections().collections == []
    untrusting = open_client(url, "key", "target")
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get_collections()
