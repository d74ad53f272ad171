"""QdrantBackups: a service that snapshots every configured collection from every Qdrant node
into the stack's object storage on a schedule, and keeps the last N backups.

It runs `components/qdrant/snapshots.py` (the standard library only) in the official Python
image, mounted as a Swarm config with the object storage client it imports
(components/platform/scripts.py): no image of our own. Its secrets (the Qdrant API key,
the object storage's password) are Swarm secret files. It is pinned to the first host, where
`python -m components.qdrant.restore` finds it and runs the restore inside it (on the stack
network, where each node is reached by its own name).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

from components.monitoring.scrape import ScrapeJob, ScrapeTarget
from components.platform import objectstore
from components.platform.hosts import DockerHosts
from components.platform.scripts import BackupProgram, Bucket, backup_program
from components.platform.service import ServiceFile
from components.qdrant import snapshots
from components.qdrant.settings import QdrantBackupSettings

if TYPE_CHECKING:
    from components.settings import StackSettings

ALIAS = "qdrant-backup"
COMPONENT = "qdrant-backup"
MODULE = snapshots.__name__
API_KEY_FILE = "/run/secrets/qdrant-backup-api-key"
S3_SECRET_FILE = "/run/secrets/qdrant-backup-s3-secret"  # noqa: S105 (a path)


def scrape_jobs() -> list[ScrapeJob]:
    """The service's /metrics: its last complete backup and its failed rounds."""
    target = ScrapeTarget(f"{ALIAS}:{objectstore.METRICS_PORT}", ALIAS)
    return [ScrapeJob("qdrant-backup", "qdrant", targets=[target])]


def deployed(settings: StackSettings) -> bool:
    """Backups run where there are a cluster and the Neon tier's object storage to write to."""
    features = settings.features
    return features.qdrant_cluster and features.neon and settings.qdrant.backups.enabled


@dataclass(frozen=True)
class QdrantBackupsArgs:
    """What the service backs up, and where to."""

    settings: QdrantBackupSettings
    hosts: DockerHosts
    nodes: Sequence[str]
    """Each Qdrant node's REST URL on the stack network, in node order."""
    collections: Sequence[str]
    api_key: pulumi.Output[str]
    store_url: str
    """The object storage's S3 endpoint on the stack network."""
    store_user: str
    store_password: pulumi.Output[str]


class QdrantBackups(pulumi.ComponentResource):
    """The backup service."""

    def __init__(
        self, name: str, args: QdrantBackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rag-infra:index:QdrantBackups", name, None, opts)
        settings, hosts = args.settings, args.hosts
        schedule = ["schedule", "--every", str(settings.every_hours * 3600), "--keep", str(settings.keep)]
        self.service = hosts.service(
            f"{name}-service",
            backup_program(
                BackupProgram(
                    alias=ALIAS,
                    component=COMPONENT,
                    image=hosts.image_ref(f"{name}-image", settings.image, self),
                    module=snapshots,
                    args=schedule,
                    bucket=Bucket(args.store_url, settings.bucket, args.store_user, args.store_password),
                    password_file=S3_SECRET_FILE,
                    env={
                        "QDRANT_NODES": ",".join(args.nodes),
                        "QDRANT_API_KEY_FILE": API_KEY_FILE,
                        "COLLECTIONS": ",".join(args.collections),
                    },
                    files=[ServiceFile(API_KEY_FILE, args.api_key, secret=True)],
                )
            ),
            parent=self,
        )
        self.register_outputs({"bucket": settings.bucket, "everyHours": settings.every_hours})
