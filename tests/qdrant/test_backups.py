"""The backup service as the program deploys it (under mocks), its command line run for real
against the fakes through the environment the service gets, and the restore command."""

from __future__ import annotations

import datetime
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from components.platform import objectstore
from components.platform.scripts import module_path
from components.qdrant import restore as restore_command
from components.qdrant import snapshots
from components.qdrant.backups import API_KEY_FILE, MODULE, S3_SECRET_FILE
from components.qdrant.snapshots import S3, Qdrant, backup
from tests.support.fake_qdrant_snapshots import FakeQdrantNodes
from tests.support.fake_s3 import FakeS3
from tests.support.scripts import run_program

DOCS = "docs_index_mxbai"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_service_backs_up_every_collection_from_every_node_into_the_stacks_store(program, stack):
    run = program(stack)
    service = run.service(f"rag-infra-{stack}-qdrant-backup")
    spec = service.plain("taskSpec")
    container = spec["containerSpec"]
    assert spec["placement"]["constraints"] == ["node.labels.rag-infra.host.0==true"]
    assert container["commands"] == ["python3", "-m", MODULE, "schedule", "--every", "86400", "--keep", "7"]
    assert container["env"]["PYTHONPATH"] == "/opt/rag-infra"
    env = container["env"]
    assert env["QDRANT_NODES"] == "http://qdrant-0:6333,http://qdrant-1:6333,http://qdrant-2:6333"
    assert env["COLLECTIONS"] == DOCS and env["S3_ENDPOINT"] == "http://minio:9000"
    assert env["S3_BUCKET"] == "qdrant-backups" and env["S3_USER"] == "neon"
    files = run.service_files(service)
    # The module at its package path, with the object storage client it imports.
    assert files["/opt/rag-infra/components/qdrant/snapshots.py"] == (
        Path(snapshots.__file__).read_text(),
        False,
    )
    assert files[module_path(objectstore)] == (Path(objectstore.__file__).read_text(), False)
    assert files[API_KEY_FILE] == (run.outputs["qdrantApiKey"], True)
    minio = next(s for s in run.services if s.plain("name").startswith(f"rag-infra-{stack}-minio"))
    assert files[S3_SECRET_FILE] == (run.service_files(minio)["/run/secrets/minio-root-password"][0], True)
    # Monitored: its own scrape job (last success, failed rounds).
    prometheus = run.service(f"rag-infra-{stack}-prometheus")
    config = yaml.safe_load(run.service_files(prometheus)["/etc/prometheus/prometheus.yml"][0])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "qdrant-backup")
    assert job["static_configs"][0]["targets"] == ["qdrant-backup:9100"]


def test_settings_change_the_schedule_and_off_means_no_service(program):
    run = program("dev", overrides={"qdrant": {"backups": {"everyHours": 6, "keep": 28}}})
    service = run.service("rag-infra-dev-qdrant-backup")
    assert service.plain("taskSpec")["containerSpec"]["commands"][4:] == ["--every", "21600", "--keep", "28"]
    off = program("dev", overrides={"qdrant": {"backups": {"enabled": False}}})
    assert not [s for s in off.services if s.plain("name").endswith("qdrant-backup")]


def test_without_the_neon_tier_there_is_no_store_and_no_backup_service(program):
    run = program("dev", overrides={"features": {"neon": False}})
    assert not [s for s in run.services if s.plain("name").endswith("qdrant-backup")]
    prometheus = run.service("rag-infra-dev-prometheus")
    config = yaml.safe_load(run.service_files(prometheus)["/etc/prometheus/prometheus.yml"][0])
    assert "qdrant-backup" not in {j["job_name"] for j in config["scrape_configs"]}


def _run_script(tmp_path, nodes, store, *args) -> subprocess.CompletedProcess:
    """The module as the service runs it: its mounted files, the settings from its environment."""
    (tmp_path / "key").write_text("qdrant-key\n")
    (tmp_path / "secret").write_text("minio-secret\n")
    env = {
        "QDRANT_NODES": ",".join(nodes.urls),
        "QDRANT_API_KEY_FILE": str(tmp_path / "key"),
        "COLLECTIONS": DOCS,
        "S3_ENDPOINT": store.url,
        "S3_BUCKET": "qdrant-backups",
        "S3_USER": "neon",
        "S3_SECRET_KEY_FILE": str(tmp_path / "secret"),
    }
    return run_program(tmp_path, [objectstore, snapshots], MODULE, args, env)


def test_the_file_lists_and_restores_with_the_services_environment(tmp_path):
    with FakeQdrantNodes(3, api_key="qdrant-key") as nodes, FakeS3("neon", "minio-secret") as store:
        nodes.create(DOCS)
        nodes.upsert(DOCS, {i: {"n": i} for i in range(12)})
        s3 = S3(store.url, "qdrant-backups", "neon", "minio-secret")
        s3.ensure_bucket()
        moment = datetime.datetime(2026, 11, 27, 3, tzinfo=datetime.UTC)
        backup(Qdrant(nodes.urls, "qdrant-key"), s3, [DOCS], keep=7, now=moment, log=lambda _: None)
        listed = _run_script(tmp_path, nodes, store, "list")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout == f"20261127T030000Z {DOCS}=12\n"
        del nodes.collections[DOCS]
        restored = _run_script(tmp_path, nodes, store, "restore", "--collection", DOCS)
        assert restored.returncode == 0, restored.stderr
        assert f"{DOCS} holds 12 point(s), as the manifest says" in restored.stdout
        assert len(nodes.points(DOCS)) == 12
        missing = _run_script(tmp_path, nodes, store, "restore", "--collection", "nope")
        assert missing.returncode == 1
        assert (
            missing.stderr == "restore: the backup of 20261127T030000Z has no snapshot of collection nope\n"
        )


class FakeTask:
    def __init__(self, exit_code: int, out: bytes, err: bytes) -> None:
        self.result = SimpleNamespace(exit_code=exit_code, output=(out, err))
        self.commands: list[list[str]] = []

    def exec_run(self, command, demux):
        assert demux is True
        self.commands.append(command)
        return self.result


def test_the_restore_command_runs_the_restore_inside_the_backup_task(monkeypatch, capsys):
    task = FakeTask(0, b"restore 20261127T030000Z: docs holds 12 point(s), as the manifest says\n", b"")
    asked = []
    monkeypatch.setattr(
        restore_command, "backup_task", lambda host, service: asked.append((host, service)) or task
    )
    args = ["--stack", "prod", "--collection", DOCS, "--snapshot", "20261127T030000Z"]
    assert restore_command.main(args) == 0
    assert asked == [("ssh://deploy@docker-1.example.internal", "rag-infra-prod-qdrant-backup")]
    assert task.commands == [
        ["python3", "-m", MODULE, "restore", "--collection", DOCS, "--snapshot", "20261127T030000Z"]
    ]
    assert "as the manifest says" in capsys.readouterr().out
    task.result.exit_code = 1
    assert restore_command.main(["--stack", "prod", "--list"]) == 1
    assert task.commands[-1] == ["python3", "-m", MODULE, "list"]


def test_the_restore_command_without_a_backup_task_says_what_is_missing(monkeypatch, capsys):
    class NoTasks:
        def __init__(self, **_):
            self.containers = SimpleNamespace(list=lambda filters: [])

    monkeypatch.setattr(restore_command.docker, "DockerClient", NoTasks)
    assert restore_command.main(["--stack", "dev", "--list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "restore: no running task of rag-infra-dev-qdrant-backup on unix:///var/run/docker.sock"
    )
    assert "qdrant.backups.enabled" in err


def test_the_manifest_is_json_with_what_the_issue_lists(tmp_path):
    with FakeQdrantNodes(3, api_key="k") as nodes, FakeS3("neon", "s") as store:
        nodes.create(DOCS)
        nodes.upsert(DOCS, {i: {} for i in range(6)})
        s3 = S3(store.url, "b", "neon", "s")
        s3.ensure_bucket()
        manifest = backup(Qdrant(nodes.urls, "k"), s3, [DOCS], keep=1, log=lambda _: None)
    entry = manifest["snapshots"][0]
    # Its collection, node, shards with their point counts, and the time.
    assert {"collection", "node", "shards", "snapshot", "key", "sha256"} <= set(entry)
    assert json.loads(json.dumps(manifest)) == manifest and len(manifest["time"]) == 16
