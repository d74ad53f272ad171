"""The prod stack squeezed onto one engine: three host URLs (the socket and two links to it),
which the program makes one swarm (the engine's node joins it once and carries the labels of
all three), the encrypted overlay network, the plan's HA sizes (3 Qdrant nodes, 3
safekeepers, 3 MinIO nodes of 2 drives). What one machine cannot show, it does not claim: the
three "hosts" are one engine, so spreading is checked on the render (which provider each
member was created with) and availability on the containers."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import psycopg
import pytest
import requests

from components.platform.tls import ca_bundle_file
from e2e.checks import (
    WRITTEN_ON_DEMAND,
    data_volumes_hold_data,
    monitoring_sees_the_whole_stack,
    names_resolve_to_their_containers,
    published_ports_are_the_declared_ones,
)
from e2e.stack import Deployment, Engine, deploy
from policies.program import stack_config, unwrap_secrets


@pytest.fixture(scope="module")
def prod(engine: Engine) -> Iterator[Deployment]:
    # One engine is one Swarm node: one LB, one Kong and one pooler task publish their ports there.
    config = stack_config("prod")[0]
    qdrant = {**config["rag-infra:qdrant"], "lbReplicas": 1}
    kong = {**config["rag-infra:kong"], "replicas": 1}
    neon = {**config.get("rag-infra:neon", {}), "poolerReplicas": 1}
    deployment = deploy(
        engine,
        "prod",
        {
            "dockerHosts": engine.host_urls(3),
            "verify": {"enabled": False},
            "qdrant": qdrant,
            "kong": kong,
            "neon": neon,
            "monitoring": {"scrapeInterval": "2s"},
        },
    )
    yield deployment
    deployment.destroy()
    for volume in engine.client.volumes.list(filters={"label": "rag-infra.stack=prod"}):
        volume.remove()


def test_every_container_turns_healthy_on_the_overlay_network(prod: Deployment) -> None:
    status = prod.wait_healthy()
    assert status and all(s == "healthy" for s in status.values()), status
    # The one-shot job ran on the host as `docker run` and exited 0 (else the deploy had failed).
    assert prod.mocks.exit_codes == {} and any(e.name == "neon-storage-bucket-run" for e in prod.state.events)
    network = prod.engine.client.networks.get(prod.network_name).attrs
    assert (network["Driver"], network["Attachable"]) == ("overlay", True)
    assert network["Options"]["encrypted"] == ""
    (node,) = prod.engine.client.nodes.list()
    assert {f"rag-infra.host.{i}" for i in range(3)} <= set(node.attrs["Spec"]["Labels"])
    attached = {
        # A service's task container is named `<service>.<slot>.<task>`; its label names the service.
        c.labels.get("com.docker.swarm.service.name", c.name)
        for c in prod.engine.client.containers.list(filters={"network": prod.network_name})
    }
    assert set(status) <= attached


def test_monitoring_scrapes_every_member_of_every_quorum(prod: Deployment) -> None:
    health = monitoring_sees_the_whole_stack(prod)
    members = {target.split("/")[0]: 0 for target in health}
    for target in health:
        members[target.split("/")[0]] += 1
    assert (members["qdrant"], members["neon-safekeeper"], members["minio"]) == (3, 3, 3)


def test_quorum_members_are_spread_one_per_host(prod: Deployment) -> None:
    hosts = prod.engine.host_urls(3)
    for prefix in ("rag-infra-prod-safekeeper-", "rag-infra-prod-qdrant-"):
        members = [c for c in prod.run.workloads if c.plain("name").removeprefix(prefix).isdigit()]
        placed = Counter(prod.run.provider_host(c) for c in members if c.plain("name").startswith(prefix))
        assert placed == dict.fromkeys(hosts, 1), (prefix, placed)


def test_both_backups_land_in_the_distributed_object_storage(prod: Deployment) -> None:
    """The Qdrant snapshots and the controller's dump go into the 3-node MinIO (a write quorum
    of its 6 drives), and read back from it: each service lists a complete backup."""
    listings = {
        "rag-infra-prod-qdrant-backup": ["python3", "-m", "components.qdrant.snapshots", "list"],
        "rag-infra-prod-storage-controller-backup": [
            "python3",
            "-m",
            "components.neon.controller_backup",
            "list",
        ],
    }
    deadline = time.monotonic() + 120  # the upload service looks into its spool every minute
    for service, command in listings.items():
        while not (listed := prod.container(service).exec_run(command)).output.strip():
            assert time.monotonic() < deadline, f"{service}: no complete backup in 120 s"
            time.sleep(5)
        assert listed.exit_code == 0, listed.output.decode()
        print(f"{service}: {listed.output.decode().strip()}")


def test_names_resolve_over_the_overlay_and_ports_are_the_declared_ones(prod: Deployment) -> None:
    names = names_resolve_to_their_containers(prod, prober="rag-infra-prod-qdrant-lb")
    assert {"safekeeper-0", "safekeeper-1", "safekeeper-2"} <= names
    published_ports_are_the_declared_ones(prod)
    data_volumes_hold_data(prod, written_on_demand=WRITTEN_ON_DEMAND)


def test_the_public_listeners_speak_tls_with_the_stacks_certificate(prod: Deployment) -> None:
    """Prod's default: the LB, Kong's proxy and the pooler serve TLS on their published ports,
    checked against the output tlsCertificate (generated: pulumi-tls's SelfSignedCert, made
    here by the harness); plaintext on those ports is refused."""
    outputs = unwrap_secrets(prod.run.outputs)
    trusted = ca_bundle_file(outputs["tlsCertificate"])
    qdrant = outputs["qdrantUrl"]
    assert qdrant.startswith("https://")
    answer = requests.get(
        f"{qdrant}/collections", headers={"api-key": outputs["qdrantApiKey"]}, verify=trusted, timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert requests.get(qdrant.replace("https://", "http://") + "/collections", timeout=10).status_code == 400
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{qdrant}/collections", timeout=10)  # the system's CAs alone do not know it
    route = outputs["kongProxyUrl"] + "/rag-search"
    assert requests.get(route, verify=trusted, timeout=10).status_code == 401  # over TLS, no JWT
    with psycopg.connect(outputs["neonPooledUrl"], connect_timeout=10) as conn:
        assert conn.pgconn.ssl_in_use and conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(
            outputs["neonPooledUrl"].replace("sslmode=require", "sslmode=disable"), connect_timeout=10
        )


def test_the_failover_drill_is_refused_on_prod_unless_forced_and_then_runs(
    prod: Deployment, tmp_path
) -> None:
    outputs = tmp_path / "outputs.json"
    code, report, printed = prod.verify("--failover", outputs_file=outputs)
    assert code == 2 and "--force" in printed and report == {}
    assert all(c.attrs["State"]["Running"] for c in prod.engine.client.containers.list(all=True)
               if c.name.startswith("rag-infra-prod-") and "bucket" not in c.name)  # fmt: skip
    code, report, printed = prod.verify("--failover", "--force", outputs_file=outputs)
    assert code == 0 and report["ok"], printed
    checks = {check["name"]: check["saw"] for check in report["checks"]}
    assert "50 of 50 writes committed" in checks["failover.safekeeper"]
    assert "rag-infra-prod-safekeeper-2" in checks["failover.safekeeper"]
    assert (
        "rag-infra-prod-neon-compute stopped: the database answered again after" in checks["failover.compute"]
    )
    # One MinIO node of three (two drives each) away: the others kept a write quorum of 4 of 6.
    held = re.match(
        r"rag-infra-prod-minio-2 stopped: node 0 reported a write quorum in (\d+) of (\d+) probes over 10 s; "
        r"back in the store after",
        checks["failover.object-storage"],
    )
    assert held and held[1] == held[2] and int(held[1]) >= 10, checks["failover.object-storage"]
    assert {f"neon.minio{i}" for i in range(3)} <= set(checks)
    print("\n".join(f"{name}: {saw}" for name, saw in checks.items() if name.startswith("failover")))


def test_destroy_keeps_the_data_volumes_and_nothing_else(prod: Deployment) -> None:
    declared = {r.inputs["name"] for r in prod.run.of_type("docker:index/volume:Volume")}
    assert prod.destroy() == []
    client = prod.engine.client
    label = "rag-infra.stack=prod"
    assert client.containers.list(all=True, filters={"label": label}) == []
    assert client.networks.list(filters={"label": label}) == []
    assert {v.name for v in client.volumes.list(filters={"label": label})} == declared
