"""Our standard-library modules run inside official images: each is mounted as a Swarm config at
its package path under PROGRAM_ROOT, and `python3 -m components.<tier>.<module>` runs it there
with the same imports as in this repository (the folders are namespace packages).

`backup_program` is the service spec both backup services share: the program with the object
storage client it imports, the bucket it writes to, a heartbeat health check, on the first host."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pulumi

from components.platform import objectstore
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec

PROGRAM_ROOT = "/opt/rag-infra"
PROGRAM_ENV = {"PYTHONPATH": PROGRAM_ROOT, "PYTHONUNBUFFERED": "1"}
"""What the service's environment needs for `python3 -m` to find them and to log at once."""
BACKUP_MEMORY_MB = 256


def module_path(module: ModuleType) -> str:
    """Where `module` is mounted in the container."""
    return f"{PROGRAM_ROOT}/{module.__name__.replace('.', '/')}.py"


def program_files(*modules: ModuleType) -> list[ServiceFile]:
    """Each module's source as a config file at its path under PROGRAM_ROOT."""
    return [ServiceFile(module_path(m), Path(m.__file__ or "").read_text()) for m in modules]


@dataclass(frozen=True)
class Bucket:
    """Where a backup program writes: a bucket of the stack's object storage."""

    endpoint: str
    """The S3 endpoint on the stack network."""
    name: str
    user: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class BackupProgram:
    """One backup service: `python3 -m module args…` with the bucket's settings in its
    environment (objectstore.s3_from_environment) and the password as a secret file."""

    alias: str
    component: str
    image: pulumi.Input[str]
    module: ModuleType
    """Its `HEALTH` is the heartbeat check of its wait between rounds."""
    args: Sequence[str]
    bucket: Bucket
    password_file: str
    env: Mapping[str, str] = field(default_factory=dict)
    files: Sequence[ServiceFile] = ()
    mounts: Sequence[Mount] = ()


def backup_program(program: BackupProgram) -> ServiceSpec:
    """The service spec: on the first host (the Swarm manager, where the restore commands reach
    its task through the Docker engine)."""
    bucket = program.bucket
    return ServiceSpec(
        alias=program.alias,
        component=program.component,
        image=program.image,
        command=["python3", "-m", program.module.__name__, *program.args],
        env={
            **program.env,
            "S3_ENDPOINT": bucket.endpoint,
            "S3_BUCKET": bucket.name,
            "S3_USER": bucket.user,
            "S3_SECRET_KEY_FILE": program.password_file,
            **PROGRAM_ENV,
        },
        files=[
            *program_files(objectstore, program.module),
            *program.files,
            ServiceFile(program.password_file, bucket.password, secret=True),
        ],
        mounts=list(program.mounts),
        pinned_to=0,
        memory_mb=BACKUP_MEMORY_MB,
        health=HealthCheck(
            ["CMD", "python3", "-c", program.module.HEALTH], interval="30s", start_period="60s"
        ),
    )
