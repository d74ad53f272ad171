"""Settings of the Qdrant tier (`rag-infra:qdrant`): the cluster, its LB and its collections."""

from collections.abc import Mapping
from typing import Any, Self

from pydantic import ValidationInfo, model_validator

from components.platform.settings import (
    BUCKET,
    DEFAULT_NGINX_IMAGE,
    FLAG,
    IMAGE,
    PORT,
    BackupSettings,
    ConfigModel,
    fail,
    image_version,
    is_prod,
    items,
    optional,
    text,
    unique,
    unique_ports,
    whole,
)

DEFAULT_QDRANT_IMAGE = "qdrant/qdrant:v1.19.0"
# Qdrant learned to let every node bootstrap from node 0 (bootstrap == own uri) in 1.13.3.
MIN_QDRANT_VERSION = (1, 13, 3)


# The Qdrant migration keeps its checkpoints in a collection of this name on the target.
RESERVED_PREFIX = "_rag_migration"


def _not_reserved(name: str) -> None:
    if name.startswith(RESERVED_PREFIX):
        fail(f"must not start with {RESERVED_PREFIX} (the migration's own bookkeeping), got {name!r}")


class CollectionSettings(ConfigModel):
    """One Qdrant collection created on the cluster with HA parameters."""

    name: text(r"[A-Za-z0-9_-]{1,255}", "letters, digits, _ or -", check=_not_reserved)
    vector_size: whole(1, 65536)
    distance: text(choices=("Cosine", "Dot", "Euclid", "Manhattan")) = "Cosine"
    shard_number: whole(1) = 1
    """Defaults to the number of nodes (filled in by QdrantSettings)."""
    replication_factor: whole(1) = 1
    """Defaults to min(2, nodes) (filled in by QdrantSettings); at most the number of nodes."""
    write_consistency_factor: whole(1) = 1
    delete_with_points: FLAG = False
    """Opt-in to deleting the collection while it holds points (default: dev true, prod false)."""

    @model_validator(mode="before")
    @classmethod
    def _dev_data_is_disposable(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and not is_prod(info):
            return {"deleteWithPoints": True, **data}
        return data

    @model_validator(mode="after")
    def _writes_wait_for_existing_replicas(self) -> Self:
        if self.write_consistency_factor > self.replication_factor:
            fail(
                f"must be <= replicationFactor ({self.replication_factor}), "
                f"got {self.write_consistency_factor}",
                "writeConsistencyFactor",
            )
        return self


class QdrantBackupSettings(BackupSettings):
    """Snapshots of every collection into the stack's object storage (components/qdrant/backups.py)."""

    bucket: BUCKET = "qdrant-backups"


class QdrantSettings(ConfigModel):
    """The Qdrant Raft cluster and its NGINX load balancer."""

    nodes: whole(1, odd=True) = 3
    image: IMAGE = DEFAULT_QDRANT_IMAGE
    lb_image: IMAGE = DEFAULT_NGINX_IMAGE
    lb_port: PORT = 6333
    lb_grpc_port: PORT = 6334
    lb_replicas: optional(whole(1)) = None
    """LB tasks, at most one per Swarm node (each publishes the LB ports in host mode); default:
    one per entry of dockerHosts."""
    memory_mb: optional(whole(64)) = None
    collections: items(CollectionSettings, what="objects") = ()
    backups: QdrantBackupSettings = {}

    @model_validator(mode="before")
    @classmethod
    def _collection_defaults_from_nodes(cls, data: Any) -> Any:
        nodes = data.get("nodes", 3) if isinstance(data, Mapping) else 3
        collections = data.get("collections") if isinstance(data, Mapping) else None
        if not isinstance(nodes, int) or not isinstance(collections, list):
            return data
        defaults = {"shardNumber": nodes, "replicationFactor": min(2, nodes)}
        filled = [{**defaults, **c} if isinstance(c, Mapping) else c for c in collections]
        return {**data, "collections": filled}

    @model_validator(mode="after")
    def _cluster_rules(self) -> Self:
        version = image_version(self.image)
        if version is not None and version < MIN_QDRANT_VERSION:
            fail(
                f"must be Qdrant >= {'.'.join(map(str, MIN_QDRANT_VERSION))} "
                f"(every node bootstraps from node 0), got {self.image!r}",
                "image",
            )
        for index, collection in enumerate(self.collections):
            if collection.replication_factor > self.nodes:
                # Qdrant silently caps replicas at the number of peers; say so instead.
                fail(
                    f"must be <= qdrant.nodes ({self.nodes}), got {collection.replication_factor}",
                    f"collections[{index}].replicationFactor",
                )
        unique([c.name for c in self.collections], "collections")
        unique_ports({"lbPort": self.lb_port, "lbGrpcPort": self.lb_grpc_port})
        return self
