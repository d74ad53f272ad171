"""Settings of the Neon tier (`rag-infra:neon`): storage, safekeeper quorum, compute, branches."""

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

from pydantic import ValidationInfo, model_validator

from components.platform.settings import (
    BUCKET,
    FLAG,
    IMAGE,
    PORT,
    BackupSettings,
    ConfigModel,
    fail,
    is_prod,
    items,
    optional,
    text,
    unique,
    whole,
)

DEFAULT_NEON_STORAGE_IMAGE = (
    "ghcr.io/neondatabase/neon:release-9129"
    "@sha256:166022a72bf9983eba96d061d794f4740edbd4c3301e66202c1180acce9a323c"
)
DEFAULT_NEON_COMPUTE_IMAGE = "ghcr.io/neondatabase/compute-node-v17:release-compute-9073"
# MinIO left Docker Hub in 2026; quay.io keeps the last published releases.
DEFAULT_MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
DEFAULT_MINIO_MC_IMAGE = "quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z"

_NAME = r"[a-z0-9][a-z0-9-]{0,62}"
_IDENTIFIER = text(r"[a-z_][a-z0-9_]{0,62}", "a Postgres identifier")
_HUMANTIME = r"\d+\s*(s|sec|secs|m|min|mins|h|hr|hrs|hour|hours|d|day|days|w|week|weeks)"


def _has_time_zone(timestamp: str) -> bool:
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).tzinfo is not None
    except ValueError:
        return False


class ObjectStorageSettings(ConfigModel):
    """The S3-compatible store (MinIO) holding Neon's layers and WAL backups.

    One MinIO server per node, pinned round-robin over the hosts, each with `drivesPerNode`
    volumes; with more than one node they form one erasure-coded deployment
    (components/neon/object_storage.py). Prod defaults to 3 nodes of 2 drives: one set of 6
    drives with parity 3, which keeps reading and writing with any one node lost."""

    image: IMAGE = DEFAULT_MINIO_IMAGE
    mc_image: IMAGE = DEFAULT_MINIO_MC_IMAGE
    bucket: BUCKET = "neon"
    region: text() = "eu-north-1"
    nodes: whole(1, 16) = 1
    drives_per_node: whole(1, 16) = 1
    api_port: PORT = 9000
    """Where OperatorAccess forwards node i's S3 API on the first host's loopback: apiPort + i."""

    @model_validator(mode="before")
    @classmethod
    def _prod_layout(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and is_prod(info):
            return {"nodes": 3, "drivesPerNode": 2, **data}
        return data

    @model_validator(mode="after")
    def _one_erasure_set(self) -> Self:
        # One erasure set of 2 to 16 drives (MinIO's set sizes); more would need server pools.
        drives = self.nodes * self.drives_per_node
        if drives > 16:
            fail(
                f"must give at most 16 drives in all (nodes x drivesPerNode), got "
                f"{self.nodes} x {self.drives_per_node} = {drives}",
                "drivesPerNode",
            )
        return self


class BranchSettings(ConfigModel):
    """A named Neon branch off another branch, optionally at an LSN or a timestamp (PITR)."""

    name: text(_NAME, "lowercase letters, digits and -")
    parent: text(_NAME, "a branch name") = "main"
    lsn: optional(text(r"[0-9A-F]{1,8}/[0-9A-F]{1,8}", "an LSN like 0/169AD58")) = None
    timestamp: optional(text()) = None
    compute: FLAG = False
    compute_port: optional(PORT) = None

    @model_validator(mode="after")
    def _one_starting_point(self) -> Self:
        if self.name == "main":
            fail("must not be 'main' (main is the root timeline)", "name")
        if self.timestamp is not None and not _has_time_zone(self.timestamp):
            fail(f"must be an ISO 8601 timestamp with a time zone, got {self.timestamp!r}", "timestamp")
        if self.lsn and self.timestamp:
            fail("may set lsn or timestamp, not both")
        if self.compute and self.compute_port is None:
            fail("is required when compute is true", "computePort")
        return self


class ControllerBackupSettings(BackupSettings):
    """Dumps of the storage controller's database into the stack's object storage
    (components/neon/controller_backups.py): the tenants' generations, placement and config."""

    bucket: BUCKET = "storage-controller-backups"


class NeonSettings(ConfigModel):
    """Neon's storage tier (pageserver, safekeepers, broker, controller) and its compute."""

    pg_version: whole(14, 17) = 17
    safekeepers: whole(1, 31) = 1
    """The walproposer allows at most 31; the default is 1 in dev and the plan's quorum of 3 in prod."""
    storage_image: IMAGE = DEFAULT_NEON_STORAGE_IMAGE
    compute_image: IMAGE = DEFAULT_NEON_COMPUTE_IMAGE
    compute_port: PORT = 5435
    pageserver_pg_port: PORT = 6400
    safekeeper_http_port: PORT = 7676
    pooler_port: PORT = 6432
    """pgbouncer beside the main compute (transaction pooling): output neonPooledUrl."""
    pooler_replicas: optional(whole(1)) = None
    """pgbouncer tasks, at most one per Swarm node (each publishes poolerPort in host mode);
    default: one per entry of dockerHosts."""
    database: _IDENTIFIER = "rag"
    user: _IDENTIFIER = "rag"
    pitr_retention: text(_HUMANTIME, "a duration like '30 days'") = "30 days"
    memory_mb: optional(whole(64)) = None
    object_storage: ObjectStorageSettings = {}
    branches: items(BranchSettings, what="objects") = ()
    controller_backups: ControllerBackupSettings = {}

    @model_validator(mode="before")
    @classmethod
    def _prod_quorum(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and is_prod(info):
            return {"safekeepers": 3, **data}
        return data

    @model_validator(mode="after")
    def _branches_and_compute(self) -> Self:
        image_major = re.search(r"compute-node-v(\d+)", self.compute_image)
        if image_major and int(image_major[1]) != self.pg_version:
            # Timelines are created for pgVersion; a compute of another major cannot read them.
            fail(
                f"runs Postgres {image_major[1]} but neon.pgVersion is {self.pg_version}; "
                f"use compute-node-v{self.pg_version}, got {self.compute_image!r}",
                "computeImage",
            )
        names = [b.name for b in self.branches]
        unique(names, "branches")
        for index, branch in enumerate(self.branches):
            if branch.parent != "main" and branch.parent not in names[:index]:
                fail(
                    f"must be main or a branch listed before {branch.name!r}, got {branch.parent!r}",
                    f"branches[{index}].parent",
                )
        ports = [self.compute_port] + [b.compute_port for b in self.branches if b.compute_port]
        if len(set(ports)) != len(ports):
            fail(f"must give every compute its own port, got {ports}", "branches")
        return self
