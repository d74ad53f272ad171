"""Each check passes against a healthy stand-in and fails, naming the problem, against a broken
one: real PostgreSQL with the RAG schema for Neon, the strict Qdrant fake for the cluster, a
Kong stand-in driven by the rendered kong.yml for the gateway."""

from __future__ import annotations

import json
from concurrent import futures

import grpc
import psycopg
import pytest
from qdrant_client import grpc as qdrant_grpc

from components.qdrant.collection import QdrantCollectionProvider
from components.qdrant.settings import CollectionSettings
from components.settings import parse_settings
from migration.schema import apply_schema
from tests.harness import run_program, unwrap_secrets
from tests.support.fake_kong import FakeKong
from tests.support.fake_qdrant import PEER_IDS, FakeQdrantCluster
from tests.support.nginx import free_port
from verify.__main__ import main
from verify.kong import check_kong
from verify.neon import check_neon
from verify.qdrant import check_qdrant, grpc_search
from verify.smoke import smoke_neon, smoke_qdrant

COLLECTION = CollectionSettings.model_validate(
    # As Pulumi.dev.yaml declares it, so the command line's checks agree with the fake.
    {"name": "docs_index_mxbai", "vectorSize": 1024, "shardNumber": 3, "replicationFactor": 2}
)


def by_name(checks) -> dict:
    return {check.name: check for check in checks}


@pytest.fixture
def neon_db(postgres_db):
    apply_schema(postgres_db)
    return postgres_db


def test_a_healthy_neon_passes_every_check(neon_db):
    checks = by_name(check_neon(neon_db, p95_limit_ms=1000, runs=5))
    assert all(check.ok for check in checks.values()), [str(c) for c in checks.values()]
    assert set(checks) == {
        "neon.connect", "neon.extensions", "neon.tables", "neon.schema-version",
        "neon.vector-query-p95", "neon.trigram-query-p95",
    }  # fmt: skip


def test_a_missing_extension_is_named(neon_db):
    with psycopg.connect(neon_db, autocommit=True) as conn:
        conn.execute("DROP EXTENSION pg_trgm CASCADE")
    checks = by_name(check_neon(neon_db, p95_limit_ms=1000, runs=5))
    assert not checks["neon.extensions"].ok and checks["neon.extensions"].saw == "missing pg_trgm"
    assert "neon.trigram-query-p95" not in checks


def test_a_schema_never_applied_is_named(postgres_db):
    checks = by_name(check_neon(postgres_db, runs=5))
    assert not checks["neon.tables"].ok and "rag.chunks" in checks["neon.tables"].saw
    assert not checks["neon.schema-version"].ok and "never applied" in checks["neon.schema-version"].saw


def test_latency_is_held_to_the_limit_on_both_sides(neon_db):
    slow = by_name(check_neon(neon_db, p95_limit_ms=0.000001, runs=5))["neon.vector-query-p95"]
    assert not slow.ok and "(limit 1e-06 ms)" in slow.saw
    assert by_name(check_neon(neon_db, p95_limit_ms=1000, runs=5))["neon.vector-query-p95"].ok


def test_an_unreachable_neon_is_one_named_check():
    (check,) = check_neon("postgresql://rag:x@127.0.0.1:9/rag", runs=1)
    assert check.name == "neon.connect" and not check.ok and "127.0.0.1" in check.saw


def create_collection(fake: FakeQdrantCluster) -> None:
    """COLLECTION, created in the fake by the program's own provider."""
    props = {
        "url": fake.url, "api_key": "test-key", "name": COLLECTION.name, "vector_size": 1024,
        "distance": "Cosine", "shard_number": 3, "replication_factor": 2, "write_consistency_factor": 1,
        "expected_peers": 3, "cluster_timeout": 5.0, "replica_timeout": 3.0,
    }  # fmt: skip
    QdrantCollectionProvider().create(props)


@pytest.fixture
def cluster():
    with FakeQdrantCluster() as fake:
        create_collection(fake)
        yield fake


def test_a_healthy_cluster_passes_every_check(cluster):
    checks = check_qdrant(cluster.url, "test-key", 3, [COLLECTION])
    assert all(check.ok for check in checks), [str(c) for c in checks]


REPLICAS, PARAMS = "qdrant.replicas.docs_index_mxbai", "qdrant.collection.docs_index_mxbai"
BREAKAGES = [
    (lambda c: setattr(c, "leader", None), "qdrant.cluster", "leader None"),
    (lambda c: setattr(c, "consensus", "stopped"), "qdrant.cluster", "consensus stopped"),
    (lambda c: setattr(c, "peers_joined", 2), "qdrant.cluster", "2/3 peers"),
    (lambda c: c.forced_states.update({(1, PEER_IDS[2]): "Partial"}), REPLICAS, "is Partial"),
    (lambda c: setattr(c, "lost_shards", {2}), REPLICAS, "shards [2] have no replica"),
    (
        lambda c: c.collections["docs_index_mxbai"]["config"]["params"].update(replication_factor=1),
        PARAMS,
        "replication_factor 1 (config 2)",
    ),
    (lambda c: c.collections.pop("docs_index_mxbai"), PARAMS, "answered 404"),
]


@pytest.mark.parametrize(("break_it", "name", "saw"), BREAKAGES)
def test_a_broken_cluster_fails_naming_the_problem(cluster, break_it, name, saw):
    break_it(cluster)
    failed = {c.name: c for c in check_qdrant(cluster.url, "test-key", 3, [COLLECTION]) if not c.ok}
    assert name in failed and saw in failed[name].saw, [str(c) for c in failed.values()]


def test_a_search_with_the_wrong_dimension_fails(cluster):
    wrong = COLLECTION.model_copy(update={"vector_size": 3})
    failed = [c for c in check_qdrant(cluster.url, "test-key", 3, [wrong]) if not c.ok]
    assert [c.name for c in failed] == ["qdrant.search.docs_index_mxbai"]


def test_the_command_reads_the_outputs_and_exits_1_naming_failures(tmp_path, neon_db, cluster, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({"neonDatabaseUrl": neon_db, "qdrantUrl": cluster.url, "qdrantApiKey": "test-key"})
    )
    assert main(["--stack", "dev", "--outputs", str(outputs), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {c["name"] for c in report["checks"]}
    assert {"neon.extensions", "qdrant.cluster", "qdrant.replicas.docs_index_mxbai"} <= names
    cluster.leader = None
    assert main(["--stack", "dev", "--outputs", str(outputs)]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("verify: ") and "qdrant.cluster" in last


def test_unreadable_outputs_exit_2(tmp_path, capsys):
    assert main(["--stack", "dev", "--outputs", str(tmp_path / "absent.json")]) == 2
    assert capsys.readouterr().err.startswith("verify: ")


@pytest.fixture(scope="module")
def kong_stack():
    """The prod render's kong.yml, its credentials and its Kong settings (named CORS origins)."""
    run = run_program("prod")
    uploads = unwrap_secrets(run.workload("rag-infra-prod-kong").inputs["uploads"])
    kong_yml = next(u["content"] for u in uploads if u["file"] == "/run/secrets/kong.yml")
    settings = parse_settings(
        {"environment": "prod", "kong": {"cors": {"origins": ["https://dashboard.example.com"]}}},
        stack="prod",
    )
    return kong_yml, json.loads(run.outputs["kongJwtCredentials"]), settings.kong


def test_a_healthy_gateway_passes_every_kong_check(kong_stack):
    kong_yml, credentials, kong = kong_stack
    with FakeKong(kong_yml) as gateway:
        checks = by_name(check_kong(gateway.url, credentials, kong.routes, kong.cors.origins))
    assert all(c.ok for c in checks.values()), [str(c) for c in checks.values() if not c.ok]
    assert checks["kong.rag-search.valid-token"].saw == "HTTP 200 from the upstream"
    assert {
        "kong.rag-search.unsigned-token",
        "kong.rag-query.cors-foreign",
        "kong.rag-query.cors-allowed",
    } <= set(checks)


@pytest.mark.parametrize(
    ("broken", "failing"),
    [
        (
            "unsigned",
            {
                "kong.rag-search.unsigned-token",
                "kong.rag-search.forged-token",
                "kong.rag-search.expired-token",
            },
        ),
        ("cors-wildcard", {"kong.rag-search.cors-foreign", "kong.rag-query.cors-foreign"}),
        ("no-rate-limit", {"kong.rag-search.rate-limit-headers", "kong.rag-query.rate-limit-headers"}),
    ],
)
def test_a_broken_gateway_fails_naming_the_problem(kong_stack, broken, failing):
    kong_yml, credentials, kong = kong_stack
    with FakeKong(kong_yml, broken=broken) as gateway:
        failed = {
            c.name for c in check_kong(gateway.url, credentials, kong.routes, kong.cors.origins) if not c.ok
        }
    assert failing <= failed


def test_an_upstream_not_deployed_yet_is_gateway_ok_upstream_down(kong_stack):
    kong_yml, credentials, kong = kong_stack
    with FakeKong(kong_yml, broken="no-rate-limit") as gateway:
        gateway.upstream_status = 503
        checks = by_name(check_kong(gateway.url, credentials, kong.routes, kong.cors.origins))
    assert checks["kong.rag-search.valid-token"].ok
    assert checks["kong.rag-search.valid-token"].saw == "gateway ok, upstream down (HTTP 503)"
    assert checks["kong.rag-search.rate-limit-headers"].ok  # not a verdict while the upstream is down


def test_an_unreachable_gateway_is_one_named_check(kong_stack):
    _, credentials, kong = kong_stack
    (check,) = check_kong("http://127.0.0.1:9", credentials, kong.routes, kong.cors.origins, timeout=2)
    assert check.name == "kong.proxy" and not check.ok


def rag_rows(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("rag.collections", "rag.documents", "rag.chunks")
        }


def test_the_neon_smoke_writes_reads_back_and_removes_only_its_own_rows(neon_db):
    with psycopg.connect(neon_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO rag.collections (name, embedding_model, embedding_dim) VALUES ('keep', 'm', 3)"
        )
    before = rag_rows(neon_db)
    check = smoke_neon(neon_db)
    assert check.ok and "read it back 1 time(s)" in check.saw
    assert rag_rows(neon_db) == before


def test_the_neon_smoke_fails_naming_the_error(neon_db):
    with psycopg.connect(neon_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE rag.chunks ADD CONSTRAINT no_writes CHECK (false) NOT VALID")
    before = rag_rows(neon_db)
    check = smoke_neon(neon_db)
    assert not check.ok and "no_writes" in check.saw
    assert rag_rows(neon_db) == before  # nothing left behind


def test_the_qdrant_smoke_finds_its_point_and_removes_it(cluster):
    check = smoke_qdrant(cluster.url, "test-key", COLLECTION)
    assert check.ok, check.saw
    assert cluster.points["docs_index_mxbai"] == {}


def test_a_point_that_is_not_kept_fails_the_qdrant_smoke(cluster, monkeypatch):
    monkeypatch.setattr(cluster, "_upsert", lambda name, body: cluster.ok({"status": "completed"}))
    check = smoke_qdrant(cluster.url, "test-key", COLLECTION)
    assert not check.ok and "nearest hit None" in check.saw


class _Points(qdrant_grpc.PointsServicer):
    """qdrant.Points/Search over the fake's REST search: the `api-key` metadata checked, the
    fake's refusal (a vector of the wrong size, a missing collection) turned into the gRPC
    status Qdrant's tonic layer sends (src/tonic/api/points_api.rs, error mapping in
    lib/storage/src/content_manager/errors.rs: bad input is INVALID_ARGUMENT, a missing
    collection NOT_FOUND)."""

    def __init__(self, fake: FakeQdrantCluster) -> None:
        self.fake = fake

    def Search(self, request, context):  # noqa: N802 (the gRPC method's name)
        key = dict(context.invocation_metadata()).get("api-key")
        if key != self.fake.api_key:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Invalid api-key")
        body = {"vector": list(request.vector), "limit": request.limit}
        path = f"/collections/{request.collection_name}/points/search"
        status, answer = self.fake.handle("POST", path, body, {"api-key": key})
        if status != 200:
            code = grpc.StatusCode.NOT_FOUND if status == 404 else grpc.StatusCode.INVALID_ARGUMENT
            context.abort(code, answer["status"]["error"])
        hits = [
            qdrant_grpc.ScoredPoint(id=qdrant_grpc.PointId(num=hit["id"]), score=hit["score"])
            for hit in answer["result"]
        ]
        return qdrant_grpc.SearchResponse(result=hits, time=0.001)


@pytest.fixture
def grpc_cluster(cluster):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    qdrant_grpc.add_PointsServicer_to_server(_Points(cluster), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop(None)


def test_a_search_over_grpc_through_the_lb_port(grpc_cluster, cluster):
    point = {"id": 7, "vector": [0.2] * 1024, "payload": {}}
    path = f"/collections/{COLLECTION.name}/points"
    cluster.handle("PUT", path, {"points": [point]}, {"api-key": "test-key"})
    check = grpc_search(grpc_cluster, "test-key", COLLECTION)
    assert check.ok and "1 hit(s)" in check.saw


@pytest.mark.parametrize(
    ("key", "collection", "saw"),
    [
        ("wrong-key", COLLECTION, "UNAUTHENTICATED"),
        ("test-key", COLLECTION.model_copy(update={"vector_size": 768}), "INVALID_ARGUMENT"),
        ("test-key", COLLECTION.model_copy(update={"name": "missing"}), "NOT_FOUND"),
    ],
)
def test_a_grpc_search_that_fails_is_named(grpc_cluster, key, collection, saw):
    check = grpc_search(grpc_cluster, key, collection)
    assert not check.ok and saw in check.saw


def test_a_closed_grpc_port_fails():
    check = grpc_search(f"http://127.0.0.1:{free_port()}", "test-key", COLLECTION)
    assert not check.ok and "UNAVAILABLE" in check.saw
