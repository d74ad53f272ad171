"""The failover drill's judgement, both sides of each criterion, against the strict Qdrant fake
(a stopped node is a dead peer there) and real PostgreSQL; the drill on real containers is in
e2e/ (test_dev.py, test_prod.py). And the admin API's exposure check, on a real socket."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from components.neon.settings import ObjectStorageSettings
from components.platform import engine as docker_engine
from components.platform.hosts import round_robin
from tests.support.fake_minio import FakeMinioCluster
from tests.support.fake_qdrant import PEER_IDS, FakeQdrantCluster
from tests.verify.test_gate import gates
from tests.verify.test_verify import COLLECTION, create_collection
from verify import failover
from verify.__main__ import main
from verify.failover import (
    Member,
    compute_failover,
    member,
    object_storage_failover,
    qdrant_failover,
    recovery_seconds,
    running_task,
    safekeeper_failover,
)
from verify.kong import check_admin_not_exposed
from verify.reach import non_loopback_address


def test_recovery_is_the_first_success_after_the_last_failure():
    assert recovery_seconds([(10.0, True), (11.0, True)], start=9.0) == 0.0
    outcomes = [(10.0, True), (10.5, False), (12.0, False), (13.5, True), (14.0, True)]
    assert recovery_seconds(outcomes, start=10.0) == pytest.approx(3.5)
    assert recovery_seconds([(10.0, True), (11.0, False)], start=10.0) == float("inf")


@pytest.mark.parametrize(
    "hosts", [["unix:///a"], ["ssh://h1", "ssh://h2", "ssh://h3"], ["ssh://h1", "ssh://h2"]]
)
def test_the_member_is_found_where_the_program_placed_it(hosts):
    for index in range(3):
        found = member(hosts, "rag-infra-prod-qdrant", index, 3)
        assert found == Member(hosts[round_robin(3, len(hosts))[index]], f"rag-infra-prod-qdrant-{index}")


class Drill:
    """The fake cluster, and a `stopped` that kills a peer there instead of a container."""

    def __init__(self) -> None:
        self.fake: FakeQdrantCluster
        self.searches_fail_while_down = False
        self.lose_a_point = False
        self.stays_dead = False
        self.down = False
        self.started_again = False

    @contextlib.contextmanager
    def stopped(self, target: Member):
        peer = PEER_IDS[int(target.container.rsplit("-", 1)[1])]
        with self.fake.state:
            self.fake.dead_peers.add(peer)
            if self.lose_a_point:
                self.fake.points[COLLECTION.name].popitem()
                self.fake.collections[COLLECTION.name]["points_count"] -= 1
        self.down = True
        try:
            yield time.monotonic()
        finally:
            self.down = False
            self.started_again = True
            if not self.stays_dead:
                with self.fake.state:
                    self.fake.dead_peers.discard(peer)


@pytest.fixture
def drill(monkeypatch):
    drill = Drill()

    class Cluster(FakeQdrantCluster):
        def handle(self, method, path, body, headers):
            if drill.searches_fail_while_down and drill.down and path.endswith("/points/search"):
                return self.error(503, "Service unavailable")
            return super().handle(method, path, body, headers)

    with Cluster() as fake:
        create_collection(fake)
        points = [{"id": n, "vector": [0.1 * (n + 1)] * 1024, "payload": {}} for n in range(5)]
        path = f"/collections/{COLLECTION.name}/points"
        fake.handle("PUT", path, {"points": points}, {"api-key": "test-key"})
        drill.fake = fake
        monkeypatch.setattr(failover, "stopped", drill.stopped)
        yield drill


def _run(drill: Drill, **kwargs) -> dict:
    target = Member("unix:///engine.sock", "rag-infra-dev-qdrant-2")
    checks = qdrant_failover(drill.fake.url, "test-key", 3, [COLLECTION], target, outage_s=1.0, **kwargs)
    assert drill.started_again  # always started again
    return {check.name: check for check in checks}


def test_a_node_loss_the_cluster_rides_out_passes(drill):
    checks = _run(drill)
    assert all(c.ok for c in checks.values()), [str(c) for c in checks.values()]
    assert "0 of" in checks["failover.qdrant.searches"].saw
    # The stopped peer held a replica of 2 of the 3 shards: the cluster saw them go.
    assert checks["failover.qdrant.replicas"].saw.startswith("2 replica(s) not Active during the outage")
    assert "{'docs_index_mxbai': 5}" in checks["failover.qdrant.points"].saw


def test_searches_down_longer_than_the_plan_allows_fail(drill, monkeypatch):
    monkeypatch.setattr(failover, "RECOVERY_LIMIT_S", 0.5)
    drill.searches_fail_while_down = True
    checks = _run(drill)
    assert not checks["failover.qdrant.searches"].ok
    assert checks["failover.qdrant.replicas"].ok and checks["failover.qdrant.points"].ok


def test_a_point_lost_during_the_drill_fails(drill):
    drill.lose_a_point = True
    check = _run(drill)["failover.qdrant.points"]
    assert not check.ok and "points lost" in check.saw and "5" in check.saw and "4" in check.saw


def test_replicas_that_never_come_back_fail(drill):
    drill.stays_dead = True
    check = _run(drill, recover_timeout_s=1.5)["failover.qdrant.replicas"]
    assert not check.ok and "not all Active" in check.saw


def test_the_safekeeper_drill_needs_a_majority_to_remain():
    (check,) = safekeeper_failover("postgresql://unused", 1, Member("unix:///x", "sk-0"))
    assert check.ok and "not run" in check.saw


def test_the_safekeeper_drill_counts_the_writes_made_while_one_is_down(postgres_db, monkeypatch):
    events = []

    @contextlib.contextmanager
    def stopped(target):
        events.append(("stop", target.container))
        yield time.monotonic()
        events.append(("start", target.container))

    monkeypatch.setattr(failover, "stopped", stopped)
    (check,) = safekeeper_failover(postgres_db, 3, Member("unix:///x", "rag-infra-prod-safekeeper-2"))
    assert check.ok and "50 of 50 writes committed, 50 rows" in check.saw
    assert events == [("stop", "rag-infra-prod-safekeeper-2"), ("start", "rag-infra-prod-safekeeper-2")]


def test_the_drill_is_refused_on_prod_without_force(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({}))
    assert main(["--stack", "prod", "--outputs", str(outputs), "--failover"]) == 2
    assert "--force" in capsys.readouterr().err


def test_the_gate_runs_the_drill_only_when_the_stack_asks(program):
    def create(verify: dict) -> str:
        (gate,) = gates(program("dev", overrides={"verify": verify}))
        return gate.inputs["create"]

    assert "--failover" not in create({})
    assert create({"failover": True}).endswith("--failover --force")


@pytest.mark.parametrize(("bind", "exposed"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_the_admin_api_must_refuse_connections_from_elsewhere(bind, exposed):
    address = non_loopback_address()
    assert address, "the test machine has an address besides loopback"
    with socket.create_server((bind, 0)) as admin:
        port = admin.getsockname()[1]
        check = check_admin_not_exposed("http://localhost:8000", f"http://127.0.0.1:{port}")
    assert check.ok is not exposed and f"{address}:{port}" in check.saw


class _FakeContainer:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def stop(self, timeout: int) -> None:
        self.log.append(f"stop {self.name}")

    def start(self) -> None:
        self.log.append(f"start {self.name}")


class _FakeDocker:
    """containers.list by the Swarm service label, containers.get by name, as the SDK does."""

    def __init__(self, tasks: dict[str, str], containers: set[str], log: list[str]) -> None:
        self.tasks, self.names, self.log = tasks, containers, log
        self.containers = self

    def list(self, filters: dict) -> list[_FakeContainer]:
        service = filters["label"].removeprefix(f"{docker_engine.SERVICE_LABEL}=")
        return [_FakeContainer(self.tasks[service], self.log)] if service in self.tasks else []

    def get(self, name: str) -> _FakeContainer:
        assert name in self.names, name
        return _FakeContainer(name, self.log)


@pytest.mark.parametrize(
    ("tasks", "containers", "expected"),
    [
        # A service's task is stopped and left to Swarm: starting it again would put a second
        # process on the member's volume next to the task Swarm starts.
        (
            {"rag-infra-dev-qdrant-2": "rag-infra-dev-qdrant-2.1.abc"},
            set(),
            ["stop rag-infra-dev-qdrant-2.1.abc"],
        ),
        # A plain container is started again when the block ends.
        ({}, {"rag-infra-dev-qdrant-2"}, ["stop rag-infra-dev-qdrant-2", "start rag-infra-dev-qdrant-2"]),
    ],
)
def test_stopped_leaves_a_service_task_to_swarm_and_restarts_a_container(
    monkeypatch, tasks, containers, expected
):
    log: list[str] = []
    monkeypatch.setattr(docker_engine.docker, "DockerClient", lambda **_: _FakeDocker(tasks, containers, log))
    with failover.stopped(Member("unix:///var/run/docker.sock", "rag-infra-dev-qdrant-2")):
        log.append("outage")
    assert log == [expected[0], "outage", *expected[1:]]


def test_a_task_swarm_may_have_moved_is_found_on_the_host_that_runs_it(monkeypatch):
    engines = {
        "ssh://a": _FakeDocker({}, set(), []),
        "ssh://b": _FakeDocker({"rag-infra-prod-neon-compute": "rag-infra-prod-neon-compute.1.x"}, set(), []),
    }
    monkeypatch.setattr(docker_engine.docker, "DockerClient", lambda base_url, **_: engines[base_url])
    assert running_task(["ssh://a", "ssh://b", "ssh://a"], "rag-infra-prod-neon-compute") == Member(
        "ssh://b", "rag-infra-prod-neon-compute"
    )
    with pytest.raises(LookupError, match="no running task of rag-infra-prod-kong on any host"):
        running_task(["ssh://a", "ssh://b"], "rag-infra-prod-kong")


@pytest.fixture
def compute_down_for(monkeypatch, postgres_db):
    """The compute 'stopped' (no Docker) and the database refusing connections for `seconds`."""
    connect = failover.psycopg.connect

    def down_for(seconds: float) -> None:
        @contextlib.contextmanager
        def stopped(_target):
            since = time.monotonic()

            def refusing(*args, **kwargs):
                if time.monotonic() - since < seconds:
                    raise failover.psycopg.OperationalError("connection refused")
                return connect(*args, **kwargs)

            monkeypatch.setattr(failover.psycopg, "connect", refusing)
            yield since

        monkeypatch.setattr(failover, "stopped", stopped)

    return down_for


def test_the_compute_drill_reports_how_long_the_database_was_away(compute_down_for, postgres_db):
    compute_down_for(1.2)
    (check,) = compute_failover(postgres_db, Member("unix:///x", "rag-infra-dev-neon-compute"), limit_s=10)
    seconds = float(check.saw.split("after ")[1].split(" s")[0])
    assert check.ok and 1.2 <= seconds < 3, check.saw
    assert "rag-infra-dev-neon-compute stopped" in check.saw and "(limit 10 s)" in check.saw


def test_a_compute_not_back_within_the_limit_fails(compute_down_for, postgres_db):
    compute_down_for(30)
    started = time.monotonic()
    (check,) = compute_failover(postgres_db, Member("unix:///x", "rag-infra-dev-neon-compute"), limit_s=1.5)
    assert not check.ok and check.saw == "rag-infra-dev-neon-compute stopped: not back within 1.5 s"
    assert time.monotonic() - started < 5


@pytest.fixture
def store_drill(monkeypatch):
    """A fake three-node store whose `stopped` takes node `index` away and brings it back
    `back_after` seconds later (Swarm's restart); None keeps it away."""
    with FakeMinioCluster(nodes=3, drives=2) as cluster:
        cluster.form()

        def arrange(index: int, back_after: float | None, also_down: int | None = None) -> None:
            @contextlib.contextmanager
            def stopped(_target):
                cluster.set_down(index)
                if also_down is not None:
                    cluster.set_down(also_down)
                if back_after is not None:
                    threading.Timer(back_after, cluster.set_down, args=(index, False)).start()
                yield time.monotonic()

            monkeypatch.setattr(failover, "stopped", stopped)

        status = {f"minio{i}": f"{url}/minio/health/cluster" for i, url in enumerate(cluster.urls)}
        yield cluster, status, arrange


LAST_MINIO = Member("unix:///x", "rag-infra-prod-minio-2")


def _store(nodes: int = 3, drives: int = 2) -> ObjectStorageSettings:
    return ObjectStorageSettings.model_validate({"nodes": nodes, "drivesPerNode": drives})


def test_the_store_drill_passes_when_a_quorum_stays_and_the_node_comes_back(store_drill):
    _, status, arrange = store_drill
    arrange(2, back_after=0.8)
    (check,) = object_storage_failover(status, _store(), LAST_MINIO, hold_s=0.6)
    assert check.ok, check.saw
    assert check.saw.startswith("rag-infra-prod-minio-2 stopped: node 0 reported a write quorum in 2 of 2")
    assert 0.8 <= float(check.saw.split("after ")[1].split(" s")[0]) < 3


def test_the_store_drill_fails_when_the_survivors_lose_their_write_quorum(store_drill):
    _, status, arrange = store_drill
    arrange(2, back_after=0.8, also_down=1)  # 2 of 6 drives left: below the write quorum of 4
    (check,) = object_storage_failover(status, _store(), LAST_MINIO, hold_s=0.6)
    assert not check.ok and "in 0 of 2 probes over 0.6 s (otherwise 503)" in check.saw


def test_the_store_drill_fails_when_the_node_does_not_come_back(store_drill):
    _, status, arrange = store_drill
    arrange(2, back_after=None)
    started = time.monotonic()
    (check,) = object_storage_failover(status, _store(), LAST_MINIO, hold_s=0.3, limit_s=1.0)
    assert not check.ok and check.saw.endswith("; not back within 1 s")
    assert time.monotonic() - started < 4


def test_the_store_drill_is_not_run_on_a_store_that_cannot_lose_a_node(store_drill, monkeypatch):
    monkeypatch.setattr(failover, "stopped", lambda _t: pytest.fail("nothing may be stopped"))
    for nodes, drives in ((1, 1), (2, 2)):
        (check,) = object_storage_failover({}, _store(nodes, drives), Member("unix:///x", "m"))
        assert check.ok, check.saw
        assert check.saw.startswith(f"not run: a store of {nodes} MinIO node(s) x {drives} drive(s)")
