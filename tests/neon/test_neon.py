"""The Neon tier under mocks (dev: 1 safekeeper, prod: 3) and its rendered files parsed back."""

from __future__ import annotations

import base64
import hashlib
import json
import tomllib

import pytest
import requests

from components.neon.config import (
    ComputeSpec,
    RemoteStorage,
    render_compute_config,
    render_identity_toml,
    render_metadata_json,
    render_notify_conf,
    render_pageserver_toml,
    safekeeper_command,
    scram_verifier,
)
from tests.harness import contains_secret_wrapper, unwrap_secrets
from tests.support.nginx import free_port

STACKS = ["dev", "prod"]
SAFEKEEPERS = {"dev": 1, "prod": 3}
# Storage-tier containers: never published on 0.0.0.0.
STORAGE = ("minio", "storage-controller", "storage-broker", "pageserver", "safekeeper", "neon-notify")


def storage_containers(run, stack):
    prefix = f"rag-infra-{stack}-"
    return [c for c in run.workloads if c.inputs["name"].removeprefix(prefix).startswith(STORAGE)]


def safekeepers(run, stack):
    return sorted(
        (c for c in run.workloads if c.inputs["name"].startswith(f"rag-infra-{stack}-safekeeper-")),
        key=lambda c: c.inputs["name"],
    )


@pytest.mark.parametrize("stack", STACKS)
def test_safekeeper_quorum_with_unique_ids_and_own_volumes(program, stack):
    run = program(stack)
    found = safekeepers(run, stack)
    assert len(found) == SAFEKEEPERS[stack]
    ids = [next(a for a in c.inputs["command"] if a.startswith("--id=")) for c in found]
    assert ids == [f"--id={i + 1}" for i in range(len(found))]
    for index, container in enumerate(found):
        command = container.inputs["command"]
        assert f"--listen-pg=safekeeper-{index}:5454" in command
        assert "--broker-endpoint=http://storage-broker:50051" in command
        remote = next(a for a in command if a.startswith("--remote-storage="))
        table = tomllib.loads("x = " + remote.split("=", 1)[1])["x"]
        assert table["endpoint"] == "http://minio:9000" and table["prefix_in_bucket"] == "/safekeeper/"
        assert container.inputs["volumes"][0]["containerPath"] == "/data"
    volumes = [c.inputs["volumes"][0]["volumeName"] for c in found]
    assert len(set(volumes)) == len(volumes)


def test_prod_spreads_safekeepers_over_the_three_hosts(program):
    run = program("prod")
    hosts = [run.provider_host(c) for c in safekeepers(run, "prod")]
    assert len(set(hosts)) == 3


@pytest.mark.parametrize("stack", STACKS)
def test_storage_tier_is_never_published_on_all_interfaces(program, stack):
    run = program(stack)
    published = 0
    for container in storage_containers(run, stack):
        for port in container.inputs.get("ports", []):
            assert port.get("ip") == "127.0.0.1", f"{container.inputs['name']} publishes {port}"
            published += 1
    assert published >= 3  # controller, pageserver http + pg, safekeepers: loopback for operators
    compute = run.workload(f"rag-infra-{stack}-neon-compute")
    assert [(p["internal"], p["external"]) for p in compute.inputs["ports"]] == [(55433, 5435)]


@pytest.mark.parametrize("stack", STACKS)
def test_start_order(program, stack):
    deps = program(stack).depends_on
    assert deps["neon-storage-controller"] == {"neon-storage-controller-db", "neon-storage-notify"}
    assert {"neon-storage-controller", "neon-storage-broker", "neon-storage-bucket"} <= deps[
        "neon-storage-pageserver"
    ]
    assert deps["neon-storage-bucket"] == {"neon-storage-minio"}
    assert {"neon-storage-pageserver", "neon-storage-controller"} <= deps["neon-tenant"]
    assert deps["neon-timeline-main"] == {"neon-tenant"}
    assert deps["neon-compute-main"] == {"neon-timeline-main"}
    assert deps["neon-schema"] == {"neon-compute-main-container"}


@pytest.mark.parametrize("stack", STACKS)
def test_durable_volumes_and_restart_policies(program, stack):
    run = program(stack)
    for name, path in (
        ("pageserver", "/data"),
        ("minio", "/data"),
        ("storage-controller-db", "/var/lib/postgresql/data"),
    ):
        container = run.workload(f"rag-infra-{stack}-{name}")
        assert container.inputs["volumes"][0]["containerPath"] == path
    for container in storage_containers(run, stack):
        assert container.inputs["restart"] == "always"
        assert container.inputs["healthcheck"]["tests"]


@pytest.mark.parametrize("stack", STACKS)
def test_compute_spec_names_every_safekeeper_and_the_timeline(program, stack):
    run = program(stack)
    compute = run.workload(f"rag-infra-{stack}-neon-compute")
    assert contains_secret_wrapper(compute.inputs["uploads"])
    (upload,) = unwrap_secrets(compute.inputs["uploads"])
    assert upload["file"] == "/var/db/postgres/configs/config.json"
    spec = json.loads(upload["content"])["spec"]
    expected = [f"safekeeper-{i}:5454" for i in range(SAFEKEEPERS[stack])]
    assert spec["safekeeper_connstrings"] == expected
    settings = {s["name"]: s["value"] for s in spec["cluster"]["settings"]}
    assert settings["neon.safekeepers"] == ",".join(expected)
    tenant = run.named("neon-tenant").inputs
    main = run.named("neon-timeline-main").inputs
    assert spec["tenant_id"] == unwrap_secrets(tenant["tenant_id"]) and len(spec["tenant_id"]) == 32
    assert spec["timeline_id"] == unwrap_secrets(main["timeline_id"])
    assert spec["pageserver_connstring"] == "host=pageserver port=6400"
    (role,) = spec["cluster"]["roles"]
    # Stored as a SCRAM verifier (the mock's RandomId answers b64Std = base64(md5(name))).
    salt = base64.b64encode(hashlib.md5(b"neon-password-salt", usedforsecurity=False).digest()).decode()
    assert run.named("neon-password-salt").inputs["byteLength"] == 16
    assert role["name"] == "rag"
    assert role["encrypted_password"] == scram_verifier("generated-neon-password", salt)
    assert settings["password_encryption"] == "scram-sha-256"
    assert spec["cluster"]["databases"] == [{"name": "rag", "owner": "rag", "options": None}]
    assert compute.inputs["healthcheck"]["tests"][1].endswith("pg_isready")


@pytest.mark.parametrize("stack", STACKS)
def test_images_are_pinned_to_release_tags(program, stack):
    run = program(stack)
    for image in run.of_type("docker:index/remoteImage:RemoteImage"):
        ref = image.inputs["name"]
        assert ":latest" not in ref and (":" in ref.split("/")[-1] or "@sha256:" in ref), ref
    refs = {i.inputs["name"] for i in run.of_type("docker:index/remoteImage:RemoteImage")}
    assert any(r.startswith("ghcr.io/neondatabase/neon:release-") for r in refs)
    assert any(r.startswith("ghcr.io/neondatabase/compute-node-v17:release-compute-") for r in refs)


def test_tenant_pitr_comes_from_settings(program):
    run = program("dev", overrides={"neon": {"safekeepers": 1, "pitrRetention": "14 days"}})
    assert run.named("neon-tenant").inputs["pitr_interval"] == "14 days"
    assert program("prod").named("neon-tenant").inputs["pitr_interval"] == "30 days"


def test_branches_with_their_own_compute_and_pitr(program):
    branches = [
        {"name": "staging", "compute": True, "computePort": 5436},
        {"name": "restore", "parent": "staging", "timestamp": "2026-11-20T08:00:00Z"},
    ]
    run = program("dev", overrides={"neon": {"safekeepers": 1, "branches": branches}})
    staging = run.named("neon-timeline-staging").inputs
    restore = run.named("neon-timeline-restore").inputs
    main_id = unwrap_secrets(run.named("neon-timeline-main").inputs["timeline_id"])
    assert unwrap_secrets(staging["ancestor_timeline_id"]) == main_id
    assert unwrap_secrets(restore["ancestor_timeline_id"]) == unwrap_secrets(staging["timeline_id"])
    assert restore["ancestor_timestamp"] == "2026-11-20T08:00:00Z"
    assert run.depends_on["neon-timeline-restore"] == {"neon-tenant", "neon-timeline-staging"}
    compute = run.workload("rag-infra-dev-neon-compute-staging")
    assert compute.inputs["ports"][0]["external"] == 5436
    assert set(run.outputs["neonBranchUrls"]) == {"staging"}
    assert not [c for c in run.workloads if c.inputs["name"].endswith("compute-restore")]


def test_neon_outputs_are_secret(program):
    run = program("dev")
    assert {"neonDatabaseUrl", "neonBranchUrls", "appEnv"} <= run.secret_outputs
    assert run.outputs["neonDatabaseUrl"] == "postgresql://rag:generated-neon-password@localhost:5435/rag"
    assert "storageController" in run.outputs["neonStatusUrls"]


# -- rendered files, parsed back -----------------------------------------------------------

STORAGE_S3 = RemoteStorage(bucket="neon", region="eu-north-1")


def test_pageserver_toml_runs_with_the_controller():
    config = tomllib.loads(render_pageserver_toml(STORAGE_S3))
    assert config["listen_pg_addr"] == "0.0.0.0:6400" and config["listen_http_addr"] == "0.0.0.0:9898"
    assert config["broker_endpoint"] == "http://storage-broker:50051"
    assert config["control_plane_api"] == "http://storage-controller:1234/upcall/v1/"
    assert "control_plane_emergency_mode" not in config
    assert config["availability_zone"] == "local"
    assert config["remote_storage"] == {
        "endpoint": "http://minio:9000",
        "bucket_name": "neon",
        "bucket_region": "eu-north-1",
        "prefix_in_bucket": "/pageserver/",
    }


def test_identity_and_metadata():
    assert tomllib.loads(render_identity_toml()) == {"id": 1}
    assert json.loads(render_metadata_json()) == {
        "host": "pageserver",
        "port": 6400,
        "http_host": "pageserver",
        "http_port": 9898,
        "availability_zone_id": "local",
    }


def test_compute_config_types():
    spec = ComputeSpec("a" * 32, "b" * 32, 6400, 3, "rag", "rag", "pw", "c2FsdHNhbHRzYWx0c2FsdA==", 17)
    config = json.loads(render_compute_config(spec))
    assert config["compute_ctl_config"] == {"jwks": {"keys": []}}
    body = config["spec"]
    assert isinstance(body["format_version"], float) and body["suspend_timeout_seconds"] == -1
    assert all({"name", "value", "vartype"} == set(s) for s in body["cluster"]["settings"])
    settings = {s["name"]: s["value"] for s in body["cluster"]["settings"]}
    assert settings["port"] == "55433" and settings["listen_addresses"] == "0.0.0.0"
    assert len(set(body["safekeeper_connstrings"])) == 3


def test_safekeeper_command_has_every_required_flag():
    command = safekeeper_command(2, STORAGE_S3, 7676)
    assert command[0] == "/usr/local/bin/safekeeper"
    assert "--id=3" in command and "--listen-http=0.0.0.0:7676" in command


def test_notify_endpoint_answers_the_controllers_puts(nginx, tmp_path):
    port = free_port()
    conf = render_notify_conf(port).replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/n.pid;")
    server = nginx(conf)
    assert server.check().returncode == 0
    server.start(port)
    body = {
        "tenant_id": "a" * 32,
        "preferred_az": None,
        "stripe_size": None,
        "shards": [{"node_id": 1, "shard_number": 0}],
    }
    for path in ("/notify-attach", "/notify-safekeepers"):
        assert requests.put(f"http://127.0.0.1:{port}{path}", json=body, timeout=5).status_code == 200
    assert requests.put(f"http://127.0.0.1:{port}/other", json=body, timeout=5).status_code == 404


def test_a_branch_id_is_drawn_anew_when_its_start_point_moves(program):
    """The id's keepers are the branch's start point: a moved branch is a new timeline, never the
    old id re-created (safekeepers keep the old one's WAL, or its tombstone, under that id)."""
    branches = [{"name": "dev"}, {"name": "pitr", "parent": "dev", "timestamp": "2026-11-01T11:00:00Z"}]
    run = program("prod", overrides={"neon": {"safekeepers": 3, "branches": branches}})
    main_id = run.named("neon-timeline-main-id").inputs
    assert not main_id.get("keepers")
    dev = run.named("neon-timeline-dev-id").inputs["keepers"]
    assert dev == {
        "parent": run.named("neon-timeline-main").inputs["timeline_id"],
        "lsn": "",
        "timestamp": "",
    }
    pitr = run.named("neon-timeline-pitr-id").inputs["keepers"]
    assert pitr["timestamp"] == "2026-11-01T11:00:00Z"
    assert pitr["parent"] == run.named("neon-timeline-dev").inputs["timeline_id"]
    # Deletion reaches every safekeeper.
    urls = run.named("neon-timeline-pitr").inputs["safekeeper_urls"]
    assert urls == [f"http://127.0.0.1:{7676 + i}" for i in range(3)]


def test_pageserver_pg_port_moves_only_the_published_port(program):
    """The registered address never changes: the controller would refuse the pageserver forever."""
    run = program("dev", overrides={"neon": {"safekeepers": 1, "pageserverPgPort": 7400}})
    pageserver = run.named("neon-storage-pageserver").inputs
    assert {"internal": 6400, "external": 7400, "ip": "127.0.0.1"} in pageserver["ports"]
    uploads = {u["file"]: u["content"] for u in unwrap_secrets(pageserver["uploads"])}
    assert json.loads(uploads["/data/.neon/metadata.json"])["port"] == 6400
    assert 'listen_pg_addr = "0.0.0.0:6400"' in uploads["/data/.neon/pageserver.toml"]
    compute = json.loads(
        unwrap_secrets(run.named("neon-compute-main-container").inputs["uploads"])[0]["content"]
    )
    assert "port=6400" in compute["spec"]["pageserver_connstring"]
    controller = run.named("neon-storage-controller").inputs["command"]
    assert "--db-connect-timeout=120s" in controller
