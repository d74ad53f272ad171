"""The Neon tier under mocks (dev: 1 safekeeper, prod: 3) and its rendered files parsed back."""

from __future__ import annotations

import base64
import configparser
import hashlib
import itertools
import json
import re
import subprocess
import tomllib

import pytest
import requests

from components.neon.config import (
    ComputeSpec,
    RemoteStorage,
    render_aws_credentials,
    render_compute_config,
    render_identity_toml,
    render_metadata_json,
    render_notify_conf,
    render_pageserver_toml,
    safekeeper_command,
    scram_verifier,
)
from components.neon.storage import CONTROLLER_DB_URL_FILE, controller_entrypoint
from policies.program import ANY_NODE
from tests.harness import unwrap_secrets
from tests.support.nginx import free_port

STACKS = ["dev", "prod"]
SAFEKEEPERS = {"dev": 1, "prod": 3}
# MinIO: one server in dev; in prod three nodes of two drives (components/neon/object_storage.py).
MINIO_NODES = {"dev": ["minio"], "prod": ["minio-0", "minio-1", "minio-2"]}
# Storage-tier containers: never published on 0.0.0.0.
STORAGE = ("minio", "storage-controller", "storage-broker", "pageserver", "safekeeper", "neon-notify")


def storage_containers(run, stack):
    prefix = f"rag-infra-{stack}-"
    return [c for c in run.workloads if c.inputs["name"].removeprefix(prefix).startswith(STORAGE)]


def access_conf(access):
    """The nginx.conf OperatorAccess runs with."""
    return next(u["content"] for u in access.inputs["uploads"] if u["file"] == "/etc/nginx/nginx.conf")


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
def test_storage_tier_publishes_nothing_and_operators_reach_it_on_the_managers_loopback(program, stack):
    """Swarm cannot publish on loopback: no storage service publishes a port; OperatorAccess
    forwards each operator port from the first host's 127.0.0.1 to its member."""
    run = program(stack)
    for service in storage_containers(run, stack):
        assert not service.inputs["ports"], f"{service.inputs['name']} publishes {service.inputs['ports']}"
    access = run.workload(f"rag-infra-{stack}-operator-access")
    published = {int(p["external"]): p for p in access.inputs["ports"]}
    assert all(p["ip"] == "127.0.0.1" for p in published.values())
    targets = dict(re.findall(r"listen (\d+);\s+set \$target ([\w.:-]+);", access_conf(access)))
    expected = {
        "1234": "storage-controller:1234",
        "9898": "pageserver:9898",
        "6400": "pageserver:6400",
        **{str(7676 + i): f"safekeeper-{i}:7676" for i in range(SAFEKEEPERS[stack])},
        **{str(9000 + i): f"{node}:9000" for i, node in enumerate(MINIO_NODES[stack])},
    }
    assert {port: targets.get(port) for port in expected} == expected
    assert set(expected) <= {str(p) for p in published}
    compute = run.workload(f"rag-infra-{stack}-neon-compute")
    assert [(p["internal"], p["external"]) for p in compute.inputs["ports"]] == [(55433, 5435)]


@pytest.mark.parametrize("stack", STACKS)
def test_start_order(program, stack):
    """Each service waits for what it needs; the safekeepers one at a time, each behind the gate
    of the one before; the storage APIs are reached through OperatorAccess."""
    deps = program(stack).depends_on
    assert {"neon-storage-controller-db", "neon-storage-notify"} <= deps["neon-storage-controller-service"]
    assert {"neon-storage-controller", "neon-storage-broker", "neon-storage-bucket"} <= deps[
        "neon-storage-pageserver-service"
    ]
    nodes = [f"neon-storage-{node}" for node in MINIO_NODES[stack]]
    assert deps["neon-storage-bucket"] == {*nodes, *(f"{node}-ready" for node in nodes)}
    # The layout guard first (a changed layout fails there), then one MinIO node at a time:
    # each behind the gate of the one before.
    layout = "neon-storage-object-storage-layout"
    for before, node in itertools.pairwise(nodes):
        assert deps[f"{node}-service"] - {"docker-swarm-labels"} == {layout, f"{before}-ready"}
    assert deps[f"{nodes[0]}-service"] == {"docker-swarm-labels", layout}
    volumes = [r.name for r in program(stack).of_type("docker:index/volume:Volume") if "-minio" in r.name]
    assert volumes and all(deps[v] == {layout} for v in volumes)
    assert all(deps[f"{node}-ready"] == {node, "operator-access"} for node in nodes)
    for index in range(SAFEKEEPERS[stack]):
        before = {f"neon-storage-safekeeper-{index - 1}-ready"} if index else set()
        assert deps[f"neon-storage-safekeeper-{index}-service"] - {"docker-swarm-labels"} == {
            "neon-storage-broker",
            "neon-storage-bucket",
            *before,
        }
        assert deps[f"neon-storage-safekeeper-{index}-ready"] == {
            f"neon-storage-safekeeper-{index}",
            "operator-access",
        }
    gates = {f"neon-storage-safekeeper-{i}-ready" for i in range(SAFEKEEPERS[stack])}
    tenant = {"neon-storage-pageserver", "neon-storage-controller", "operator-access", *gates}
    assert tenant <= deps["neon-tenant"]
    assert deps["neon-timeline-main"] == {"neon-tenant"}
    assert deps["neon-compute-main"] == {"neon-timeline-main"}
    assert deps["neon-schema"] == {"neon-compute-main-postgres"}


@pytest.mark.parametrize("stack", STACKS)
def test_durable_volumes_pinned_with_their_members_and_restart_policies(program, stack):
    run = program(stack)
    first_host = run.named("docker-host-0").inputs["host"]
    for name, path in (
        ("pageserver", "/data"),
        ("storage-controller-db", "/var/lib/postgresql/data"),
    ):
        service = run.workload(f"rag-infra-{stack}-{name}")
        assert service.inputs["volumes"][0]["containerPath"] == path
        assert service.host == first_host, f"{name} is not pinned to the host of its volume"
    for name in ("storage-broker", "storage-controller", "neon-notify", "neon-compute", "neon-pooler"):
        assert run.workload(f"rag-infra-{stack}-{name}").host == ANY_NODE, f"{name} holds no data"
    for view in storage_containers(run, stack):
        service = run.service(view.inputs["name"])
        assert service.plain("taskSpec")["restartPolicy"]["condition"] == "any"
        assert view.inputs["healthcheck"]["tests"]


@pytest.mark.parametrize("stack", STACKS)
def test_single_writers_never_run_twice_during_an_update(program, stack):
    """A compute (one writer per timeline) and the controller (no leader election) stop before
    their successor starts, though they hold no volume; the pooler keeps serving (start-first)."""
    run = program(stack)
    prefix = f"rag-infra-{stack}-"
    order = {s.inputs["name"].removeprefix(prefix): s.plain("updateConfig")["order"] for s in run.services}
    assert order["neon-compute"] == order["storage-controller"] == order["pageserver"] == "stop-first"
    assert order["neon-pooler"] == order["storage-broker"] == "start-first"


@pytest.mark.parametrize("stack", STACKS)
def test_storage_secrets_are_swarm_secrets_never_environment(program, stack):
    """The S3 key pair (a shared credentials file), MinIO's root password and the controller's
    database URL reach their services as Swarm secrets; no environment holds one."""
    run = program(stack)
    password = "generated-neon-storage-minio-password"
    for name in ("pageserver", *(f"safekeeper-{i}" for i in range(SAFEKEEPERS[stack]))):
        service = run.service(f"rag-infra-{stack}-{name}")
        content, secret = run.service_files(service)["/run/secrets/aws-credentials"]
        assert secret
        profile = configparser.ConfigParser()
        profile.read_string(content)
        assert dict(profile["default"]) == {"aws_access_key_id": "neon", "aws_secret_access_key": password}
        env = service.plain("taskSpec")["containerSpec"]["env"]
        assert env == {"AWS_SHARED_CREDENTIALS_FILE": "/run/secrets/aws-credentials"}
    for node in MINIO_NODES[stack]:
        # The same root credentials on every node: they sign the nodes' requests to each other.
        minio = run.service(f"rag-infra-{stack}-{node}")
        assert run.service_files(minio)["/run/secrets/minio-root-password"] == (password, True)
        minio_env = minio.plain("taskSpec")["containerSpec"]["env"]
        assert minio_env == {
            "MINIO_ROOT_USER": "neon",
            "MINIO_ROOT_PASSWORD_FILE": "/run/secrets/minio-root-password",
            # Its metrics need no token: Prometheus holds no S3 credentials.
            "MINIO_PROMETHEUS_AUTH_TYPE": "public",
        }
    controller = run.service(f"rag-infra-{stack}-storage-controller")
    url, secret = run.service_files(controller)["/run/secrets/storage-controller-database-url"]
    assert secret and url.startswith("postgresql://storage_controller:generated-")
    assert url.endswith("@storage-controller-db:5432/storage_controller")
    command = run.workload(f"rag-infra-{stack}-storage-controller").inputs["command"]
    assert "--db-connect-timeout=120s" in command and "generated-" not in " ".join(command)
    for view in storage_containers(run, stack):
        assert not any("generated-" in env for env in view.inputs["envs"]), view.inputs["name"]


def test_controller_entrypoint_reads_its_database_url_from_the_secret(tmp_path):
    """The shell wrapper exports DATABASE_URL from the file to the program it execs, with every
    argument; an unreadable secret stops it before the program starts."""
    secret = tmp_path / "url"
    secret.write_text("postgresql://u:p%40ss@db:5432/x")
    program = tmp_path / "storage_controller"
    program.write_text('#!/bin/sh\nprintf \'%s|\' "$DATABASE_URL" "$@"\n')
    program.chmod(0o755)
    command = controller_entrypoint(["--dev", "--listen=0.0.0.0:1234"])
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[3:] == ["storage_controller", "--dev", "--listen=0.0.0.0:1234"]
    script = command[2].replace(CONTROLLER_DB_URL_FILE, str(secret))
    script = script.replace("/usr/local/bin/storage_controller", str(program))
    out = subprocess.run(["/bin/sh", "-c", script, *command[3:]], capture_output=True, text=True, check=True)
    assert out.stdout == "postgresql://u:p%40ss@db:5432/x|--dev|--listen=0.0.0.0:1234|"
    missing = script.replace(str(secret), str(tmp_path / "absent"))
    failed = subprocess.run(["/bin/sh", "-c", missing, *command[3:]], capture_output=True, text=True)
    assert failed.returncode == 1 and not failed.stdout


def test_aws_credentials_file_is_what_an_ini_reader_reads_back():
    profile = configparser.ConfigParser()
    profile.read_string(render_aws_credentials("neon", "abc123XYZ"))
    assert dict(profile["default"]) == {"aws_access_key_id": "neon", "aws_secret_access_key": "abc123XYZ"}
    for bad in ("", "two\nlines", "[x]"):
        with pytest.raises(ValueError, match="secret access key") as raised:
            render_aws_credentials("neon", bad)
        assert not bad or bad not in str(raised.value)


@pytest.mark.parametrize("stack", STACKS)
def test_compute_spec_names_every_safekeeper_and_the_timeline(program, stack):
    run = program(stack)
    files = run.service_files(run.service(f"rag-infra-{stack}-neon-compute"))
    content, secret = files["/var/db/postgres/configs/config.json"]
    assert secret and len(files) == 1
    spec = json.loads(content)["spec"]
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
    health = run.workload(f"rag-infra-{stack}-neon-compute").inputs["healthcheck"]
    assert health["tests"][1].endswith("pg_isready")


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
    access = run.workload("rag-infra-dev-operator-access")
    assert {"internal": 7400, "external": 7400, "ip": "127.0.0.1"} in access.inputs["ports"]
    assert re.search(r"listen 7400;\s+set \$target pageserver:6400;", access_conf(access))
    files = run.service_files(run.service("rag-infra-dev-pageserver"))
    assert json.loads(files["/data/.neon/metadata.json"][0])["port"] == 6400
    assert 'listen_pg_addr = "0.0.0.0:6400"' in files["/data/.neon/pageserver.toml"][0]
    compute = run.service_files(run.service("rag-infra-dev-neon-compute"))
    spec = json.loads(compute["/var/db/postgres/configs/config.json"][0])["spec"]
    assert "port=6400" in spec["pageserver_connstring"]
