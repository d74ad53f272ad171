"""The dev stack, deployed by the program on a real Docker engine, proven from the outside.

One deployment for the module (it takes about half a minute); the tests read it in file
order and the last one destroys it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import psycopg
import pytest
import requests

from components.neon.controller_restore import Restore
from e2e.checks import (
    OPERATOR_PORTS,
    PUBLIC_PORTS,
    WRITTEN_ON_DEMAND,
    data_volumes_hold_data,
    monitoring_sees_the_whole_stack,
    names_resolve_to_their_containers,
    published_ports_are_the_declared_ones,
    reachable_from_elsewhere,
)
from e2e.stack import Deployment, Engine, deploy
from tests.support.nginx import free_port
from tests.support.rag_data import load_legacy

SOURCE_NAME = "rag-e2e-legacy-timescale"
SOURCE_PASSWORD = "legacy-source-password"


@pytest.fixture(scope="module")
def legacy_source(engine: Engine) -> Iterator[str]:
    """The old database, as a container of its own (real PostgreSQL with pgvector), filled
    with a slice of the plan's data; its DSN as seen from this machine."""
    port = free_port()
    container = engine.client.containers.run(
        engine.built["postgres"],
        name=SOURCE_NAME,
        environment={"POSTGRES_USER": "legacy", "POSTGRES_PASSWORD": SOURCE_PASSWORD, "POSTGRES_DB": "rag"},
        ports={"5432/tcp": ("127.0.0.1", port)},
        detach=True,
    )
    dsn = f"postgresql://legacy:{SOURCE_PASSWORD}@127.0.0.1:{port}/rag"
    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    load_legacy(dsn, chunks=400, documents=40, query_rows=60)
    yield dsn
    container.remove(force=True, v=True)


@pytest.fixture(scope="module")
def dev(engine: Engine, legacy_source: str) -> Iterator[Deployment]:
    deployment = deploy(
        engine,
        "dev",
        {
            "dockerHosts": engine.host_urls(1),
            "verify": {"enabled": False},  # the checks are run against it by the tests below
            "migration": {"postgres": {"enabled": True}},
            "monitoring": {"scrapeInterval": "2s"},  # the test waits for a few scrapes
        },
        secrets={"timescaleUrl": legacy_source},
    )
    yield deployment
    deployment.destroy()


def test_the_program_made_the_engine_a_swarm_manager_and_the_network_an_encrypted_overlay(
    dev: Deployment,
) -> None:
    swarm = dev.engine.client.info()["Swarm"]
    assert (swarm["LocalNodeState"], swarm["ControlAvailable"]) == ("active", True)
    (node,) = dev.engine.client.nodes.list()
    assert node.attrs["Spec"]["Labels"] == {"rag-infra.host.0": "true"}
    network = dev.engine.client.networks.get(dev.network_name).attrs
    assert network["Driver"] == "overlay" and network["Options"]["encrypted"] == ""


def test_every_container_turns_healthy_and_every_job_exits_0(dev: Deployment) -> None:
    status = dev.wait_healthy()
    assert status and all(s == "healthy" for s in status.values()), status
    # The one-shot job ran on the host as `docker run` and exited 0 (else the deploy had failed).
    assert dev.mocks.exit_codes == {} and any(e.name == "neon-storage-bucket-run" for e in dev.state.events)


def test_monitoring_scrapes_every_service_and_nothing_alerts(dev: Deployment) -> None:
    health = monitoring_sees_the_whole_stack(dev)
    # Every tier and every kind of member, the LB and Kong found by DNS (one task each here).
    jobs = {target.split("/")[0] for target in health}
    assert {"qdrant", "qdrant-lb", "kong", "neon-safekeeper", "neon-compute", "minio", "grafana"} <= jobs
    assert sum(target.startswith("qdrant/") for target in health) == 3


def test_each_container_starts_after_what_it_depends_on_is_ready(dev: Deployment) -> None:
    events = dev.state.events
    first = {}
    for event in events:
        first.setdefault((event.kind, event.name), event.at)
    # What "ready" means for each resource a dependant may wait on: (event kind, event name).
    ready: dict[str, tuple[str, str]] = {}
    for resource in dev.run.resources:
        if resource.typ == "docker:index/service:Service":
            ready[resource.name] = ("healthy", resource.name)  # converged: every task running, healthy
        elif resource.typ == "rag-infra:index:SwarmService":
            ready[resource.name] = ("healthy", f"{resource.name}-service")  # through its service
        elif resource.typ == "docker:index/container:Container":
            inputs = resource.inputs
            kind = "exited" if inputs.get("attach") else "healthy" if inputs.get("wait") else "started"
            ready[resource.name] = (kind, resource.name)
        elif resource.typ.startswith(("pulumi-python:dynamic", "command:")):
            ready[resource.name] = ("created", resource.name)  # recorded once it has finished
    checked = 0
    for name, dependencies in dev.run.depends_on.items():
        if ("created", name) not in first:
            continue
        for dependency in dependencies & set(ready):
            ready_at = first[ready[dependency]]
            assert ready_at <= first[("created", name)], (
                f"{name} created before {dependency} was {ready[dependency][0]}"
            )
            checked += 1
    assert checked >= 12
    # The chain the Neon tier stands on: the controller, then the pageserver; the safekeeper
    # back in its quorum; then the tenant and timeline, then the compute that serves them.
    chain = [
        (("healthy", "neon-storage-controller-service"), ("healthy", "neon-storage-pageserver-service")),
        (("healthy", "neon-storage-pageserver-service"), ("created", "neon-timeline-main")),
        (("created", "neon-storage-safekeeper-0-ready"), ("created", "neon-timeline-main")),
        (("created", "neon-timeline-main"), ("healthy", "neon-compute-main-postgres-service")),
        (("healthy", "neon-compute-main-postgres-service"), ("created", "neon-schema")),
    ]
    for before, after in chain:
        assert first[before] <= first[after], (
            f"{after} came at {first[after]:.1f}s, before {before} at {first[before]:.1f}s"
        )


def test_every_name_the_configs_use_resolves_to_its_container(dev: Deployment) -> None:
    names = names_resolve_to_their_containers(dev, prober="rag-infra-dev-qdrant-lb")
    assert {
        "qdrant-0",
        "qdrant-1",
        "qdrant-2",
        "storage-broker",
        "pageserver",
        "minio",
        "neon-compute",
    } <= names


def test_published_ports_are_exactly_the_declared_ones_and_operator_ports_stay_on_loopback(
    dev: Deployment,
) -> None:
    published_ports_are_the_declared_ones(dev)
    # From an address of this machine other than loopback: the public ports answer, the
    # operator ports do not.
    assert all(reachable_from_elsewhere(port) for port in PUBLIC_PORTS)
    assert not any(reachable_from_elsewhere(port) for port in OPERATOR_PORTS)


def test_every_data_volume_holds_its_service_data(dev: Deployment) -> None:
    data_volumes_hold_data(dev, written_on_demand=WRITTEN_ON_DEMAND)


def _grpc_health(target: str) -> str:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary("/qdrant.Qdrant/HealthCheck")
        reply = call(b"", timeout=5)
    # HealthCheckReply: field 1 title, field 2 version (length-delimited strings).
    fields, at = {}, 0
    while at < len(reply):
        number, length = reply[at] >> 3, reply[at + 1]
        fields[number] = reply[at + 2 : at + 2 + length].decode()
        at += 2 + length
    return fields[2]


def test_the_lb_serves_rest_and_grpc_and_keeps_serving_with_a_node_stopped(dev: Deployment) -> None:
    """With a node stopped, every request is answered. One exception is nginx's own: a request
    that is trying the stopped node at the moment its name leaves Docker's DNS ends in 502 "no
    live upstreams" (ngx_http_upstream_round_robin.c: a peer list that changed during the
    request gives NGX_BUSY), so at most one request may fail, and its retry must not."""
    outputs = dev.run.outputs
    url, key = outputs["qdrantUrl"], outputs["qdrantApiKey"]
    grpc_target = outputs["qdrantGrpcUrl"].removeprefix("http://")

    def rest() -> int:
        return requests.get(
            f"{url}/collections/docs_index_mxbai", headers={"api-key": key}, timeout=10
        ).status_code

    assert rest() == 200
    assert _grpc_health(grpc_target) == "1.19.0"
    node = dev.container("rag-infra-dev-qdrant-2")
    node.stop(timeout=1)  # Swarm replaces the task by itself (restart condition any)
    failed = []
    for _ in range(30):  # spans the LB's DNS re-resolution (valid=10s)
        if (code := rest()) != 200:
            failed.append((code, rest()))
    lb_log = dev.container("rag-infra-dev-qdrant-lb").logs(tail=20).decode()
    assert len(failed) <= 1 and all(retry == 200 for _, retry in failed), (failed, lb_log)
    # gRPC through the same upstream re-resolution: the same single nginx 502 is allowed, once.
    grpc_failed = []
    for _ in range(6):
        try:
            assert _grpc_health(grpc_target) == "1.19.0"
        except grpc.RpcError as err:
            grpc_failed.append(err.details())
            assert _grpc_health(grpc_target) == "1.19.0", grpc_failed
    assert len(grpc_failed) <= 1 and all("502" in detail for detail in grpc_failed), grpc_failed
    assert dev.wait_healthy(90)["rag-infra-dev-qdrant-2"] == "healthy"
    replacement = dev.container("rag-infra-dev-qdrant-2")
    assert replacement.id != node.id, "Swarm started a new task for the stopped one"


def test_a_dropped_collection_comes_back_from_the_backup_in_the_object_storage(dev: Deployment) -> None:
    """The backup service (official python image, the stand-in's real CPython) backs up through
    the stack network into MinIO; the restore runs where `components.qdrant.restore` runs it,
    inside its task, and brings a dropped collection back with its points."""
    outputs = dev.run.outputs
    url, headers = outputs["qdrantUrl"], {"api-key": outputs["qdrantApiKey"]}
    collection = f"{url}/collections/docs_index_mxbai"
    points = [{"id": i, "vector": [0.001 * (i + 1)] * 1024, "payload": {"n": i}} for i in range(25)]
    assert requests.put(
        f"{collection}/points?wait=true", json={"points": points}, headers=headers, timeout=30
    ).ok
    count = requests.post(f"{collection}/points/count", json={"exact": True}, headers=headers, timeout=10)
    expected = count.json()["result"]["count"]
    task = dev.container("rag-infra-dev-qdrant-backup")
    module = ["python3", "-m", "components.qdrant.snapshots"]
    made = task.exec_run([*module, "backup", "--keep", "7"])
    assert made.exit_code == 0, made.output.decode()
    listed = task.exec_run([*module, "list"]).output.decode().splitlines()
    assert len(listed) >= 2 and listed[-1].endswith(f"docs_index_mxbai={expected}"), (
        listed
    )  # the scheduled one too
    assert requests.delete(collection, headers=headers, timeout=30).json()["result"] is True
    started = time.monotonic()
    restored = task.exec_run([*module, "restore", "--collection", "docs_index_mxbai"])
    took = time.monotonic() - started
    assert restored.exit_code == 0, restored.output.decode()
    count = requests.post(f"{collection}/points/count", json={"exact": True}, headers=headers, timeout=10)
    assert count.json()["result"]["count"] == expected
    print(f"\nrestore drill: {expected} point(s) back in {took:.1f} s")


def test_the_postgres_migration_ran_from_a_container_source_into_the_compute(
    dev: Deployment, legacy_source: str
) -> None:
    report = dev.run.outputs["postgresMigration"]
    assert report["ok"], report
    with (
        psycopg.connect(legacy_source) as source,
        psycopg.connect(dev.run.outputs["neonDatabaseUrl"]) as target,
    ):
        for table in ("rag.collections", "rag.documents", "rag.chunks"):
            count = source.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert count > 0
            assert target.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count, table
        # The compute serves it to the role through the pooler as well.
        pooled = dev.run.outputs["neonPooledUrl"]
        with psycopg.connect(pooled, prepare_threshold=None) as through_pool:
            assert through_pool.execute("SELECT count(*) FROM rag.chunks").fetchone()[0] == 400


def test_verify_passes_and_the_failover_drill_measures_the_loss_of_a_node(dev: Deployment, tmp_path) -> None:
    """`python -m verify --failover` against the deployed stack: every check passes, and the
    drill stops qdrant-2 through the engine's API under load, measures, and starts it again;
    the points written before are all there after; then it stops the compute's task and
    measures until the database answers again."""
    outputs = dev.run.outputs
    points = [
        {"id": n, "vector": [((n * 7919) % 1000 + 1) / 1000.0] * 1024, "payload": {"n": n}}
        for n in range(200)
    ]
    answer = requests.put(
        f"{outputs['qdrantUrl']}/collections/docs_index_mxbai/points",
        json={"points": points},
        headers={"api-key": outputs["qdrantApiKey"]},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    code, report, printed = dev.verify("--failover", outputs_file=tmp_path / "outputs.json")
    assert code == 0 and report["ok"], printed
    checks = {check["name"]: check for check in report["checks"]}
    assert {"failover.qdrant.searches", "failover.qdrant.replicas", "failover.qdrant.points"} <= set(checks)
    assert "no majority" in checks["failover.safekeeper"]["saw"]  # dev runs one safekeeper
    assert checks["failover.object-storage"]["saw"].startswith("not run: a store of 1 MinIO node(s)")
    assert checks["neon.minio0"]["ok"]  # the single server's own write quorum
    # The compute's task stopped: Swarm starts another, and the database answers again.
    assert checks["failover.compute"]["ok"] and "answered again after" in checks["failover.compute"]["saw"]
    assert (
        "{'docs_index_mxbai': 200}, after {'docs_index_mxbai': 200}"
        in checks["failover.qdrant.points"]["saw"]
    )
    # The cluster noticed the node was gone (its replicas Dead), so the recovery means something.
    assert not checks["failover.qdrant.replicas"]["saw"].startswith(("0 ", "None "))
    print(
        "\n".join(f"{name}: {check['saw']}" for name, check in checks.items() if name.startswith("failover"))
    )
    assert dev.container("rag-infra-dev-qdrant-2").attrs["State"]["Running"]


def test_the_controllers_database_comes_back_from_its_backup(dev: Deployment) -> None:
    """A dump now (the loop's ONCE) from the database's own image, uploaded by the backup
    service; a change after it; then the restore command's steps through the engine: the
    controller stopped, the dump restored, the controller started on it and asked to re-import
    what the object storage holds. The stand-in controller keeps its records in its database,
    as the real one does, so the change after the backup is undone."""
    outputs = dev.run.outputs
    controller = outputs["neonStatusUrls"]["storageController"].removesuffix("/status")
    tenant, main = outputs["neonTenantId"], outputs["neonTimelineIds"]["main"]
    config_url = f"{controller}/v1/tenant/{tenant}/config"
    backed_up = requests.get(config_url, timeout=10).json()["tenant_specific_overrides"]
    dump = dev.container("rag-infra-dev-storage-controller-dump")
    made = dump.exec_run(["/bin/sh", "/opt/rag-infra/dump-loop.sh"], environment={"ONCE": "1"})
    assert made.exit_code == 0, made.output.decode()
    stamp = made.output.decode().split("dump ", 1)[1].split(":", 1)[0]
    upload = dev.container("rag-infra-dev-storage-controller-backup")
    module = ["python3", "-m", "components.neon.controller_backup"]
    upload.exec_run([*module, "upload", "--keep", "7"])  # unless the service's own look was first
    assert stamp in upload.exec_run([*module, "list"]).output.decode()
    changed = requests.put(
        f"{controller}/v1/tenant/config", json={"tenant_id": tenant, "pitr_interval": "1 day"}, timeout=10
    )
    assert (
        changed.ok and requests.get(config_url, timeout=10).json()["tenant_specific_overrides"] != backed_up
    )
    said: list[str] = []
    started = time.monotonic()
    Restore(dev.engine.client, "rag-infra-dev", out=said.append).restore(stamp)
    took = time.monotonic() - started
    assert "  reattach: 0 tenant(s) imported from the object storage" in said, said
    assert requests.get(config_url, timeout=10).json()["tenant_specific_overrides"] == backed_up
    assert requests.get(f"{controller}/v1/tenant/{tenant}/timeline/{main}", timeout=10).ok
    assert dev.wait_healthy(90)["rag-infra-dev-storage-controller"] == "healthy"
    print(f"\ncontroller restore drill: {stamp} back in {took:.1f} s:", *said, sep="\n")


def test_a_second_apply_of_the_same_render_changes_nothing(dev: Deployment) -> None:
    before = {c.name: c.id for c in dev.engine.client.containers.list(all=True)}
    again = dev.reapply()
    assert again.changes == []
    assert again.state.events == []
    assert {c.name: c.id for c in dev.engine.client.containers.list(all=True)} == before


def test_destroy_leaves_no_container_network_or_volume_of_the_stack(dev: Deployment) -> None:
    assert dev.destroy() == []
    client = dev.engine.client
    label = "rag-infra.stack=dev"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    assert client.volumes.list(filters={"label": label}) == []
