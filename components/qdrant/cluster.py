"""QdrantCluster: N Qdrant nodes in one Raft cluster behind an NGINX load balancer."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.hosts import DockerHosts
from components.platform.probes import bash_http_probe
from components.platform.secrets import secret_or_generated
from components.platform.settings import image_version
from components.qdrant.collection import QdrantCollection, QdrantCollectionArgs
from components.qdrant.lb_config import LbOptions, Upstream, render_qdrant_lb_conf
from components.qdrant.settings import QdrantSettings

REST_PORT = 6333
GRPC_PORT = 6334
P2P_PORT = 6335  # Raft and internal gRPC: never published to a host
LB_ALIAS = "qdrant-lb"


def node_alias(index: int) -> str:
    """Stable DNS name of node `index` on the stack network."""
    return f"qdrant-{index}"


def node_command(index: int) -> list[str]:
    """Every node names itself and bootstraps from node 0 (node 0 then starts the cluster,
    Qdrant >= 1.13.3). The image's entrypoint passes its arguments on to ./qdrant."""
    return [
        "./entrypoint.sh",
        "--uri",
        f"http://{node_alias(index)}:{P2P_PORT}",
        "--bootstrap",
        f"http://{node_alias(0)}:{P2P_PORT}",
    ]


@dataclass(frozen=True)
class QdrantClusterArgs:
    """Inputs of the Qdrant tier."""

    settings: QdrantSettings
    hosts: DockerHosts
    api_key: pulumi.Output[str] | None
    """Configured `qdrantApiKey`; generated when None."""


class QdrantCluster(pulumi.ComponentResource):
    """Qdrant nodes (one volume each, spread over the Docker hosts), the LB and the collections."""

    url: pulumi.Output[str]
    grpc_url: pulumi.Output[str]
    internal_url: pulumi.Output[str]
    api_key: pulumi.Output[str]
    collections: list[QdrantCollection]

    def __init__(
        self, name: str, args: QdrantClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rag-infra:index:QdrantCluster", name, None, opts)
        settings, hosts = args.settings, args.hosts
        self.api_key = secret_or_generated(f"{name}-api-key", args.api_key, parent=self)

        nodes: list[docker.Container] = []
        for index, provider in enumerate(hosts.placement(settings.nodes)):
            child = pulumi.ResourceOptions(parent=self, provider=provider)
            image = hosts.pull(f"{name}-image-{index}", settings.image, child)
            storage = hosts.volume(f"{name}-storage-{index}", f"qdrant-{index}-storage", "qdrant", child)
            snapshots = hosts.volume(
                f"{name}-snapshots-{index}", f"qdrant-{index}-snapshots", "qdrant", child
            )
            nodes.append(
                docker.Container(
                    f"{name}-node-{index}",
                    name=f"{hosts.prefix}-{node_alias(index)}",
                    hostname=node_alias(index),
                    image=image.image_id,
                    command=node_command(index),
                    envs=[
                        "QDRANT__CLUSTER__ENABLED=true",
                        f"QDRANT__CLUSTER__P2P__PORT={P2P_PORT}",
                        self.api_key.apply(lambda key: f"QDRANT__SERVICE__API_KEY={key}"),
                    ],
                    volumes=[
                        docker.ContainerVolumeArgs(
                            volume_name=storage.name, container_path="/qdrant/storage"
                        ),
                        docker.ContainerVolumeArgs(
                            volume_name=snapshots.name, container_path="/qdrant/snapshots"
                        ),
                    ],
                    networks_advanced=hosts.attach(node_alias(index)),
                    # A follower that starts before node 0 answers exits at once; restart it.
                    restart="always",
                    memory=settings.memory_mb,
                    healthcheck=docker.ContainerHealthcheckArgs(
                        # /readyz: Qdrant's start-up gate (all local shards ready); never needs the API key.
                        tests=bash_http_probe(REST_PORT, "/readyz"),
                        interval="10s",
                        timeout="5s",
                        retries=6,
                        start_period="30s",
                    ),
                    labels=hosts.labels("qdrant"),
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        provider=provider,
                        depends_on=nodes[:1],  # followers after node 0
                    ),
                )
            )

        lb_provider = hosts.providers[0]
        lb_child = pulumi.ResourceOptions(parent=self, provider=lb_provider)
        lb_image = hosts.pull(f"{name}-lb-image", settings.lb_image, lb_child)
        lb_conf = render_qdrant_lb_conf(
            [Upstream(node_alias(i), REST_PORT, GRPC_PORT) for i in range(settings.nodes)],
            LbOptions(nginx_version=image_version(settings.lb_image) or (1, 0, 0)),
        )
        self.lb = docker.Container(
            f"{name}-lb",
            name=f"{hosts.prefix}-{LB_ALIAS}",
            image=lb_image.image_id,
            uploads=[docker.ContainerUploadArgs(file="/etc/nginx/nginx.conf", content=lb_conf)],
            ports=[
                docker.ContainerPortArgs(internal=REST_PORT, external=settings.lb_port),
                docker.ContainerPortArgs(internal=GRPC_PORT, external=settings.lb_grpc_port),
            ],
            networks_advanced=hosts.attach(LB_ALIAS),
            restart="always",
            memory=256 if settings.memory_mb else None,
            healthcheck=docker.ContainerHealthcheckArgs(
                # busybox wget in the alpine image; /healthz passes through to a node.
                tests=["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{REST_PORT}/healthz"],
                interval="10s",
                timeout="5s",
                retries=3,
            ),
            labels=hosts.labels("qdrant-lb"),
            # nginx resolves upstream names when it loads the file: start it after the nodes.
            opts=pulumi.ResourceOptions(parent=self, provider=lb_provider, depends_on=nodes),
        )

        public_host = hosts.reachable_host(0)
        self.url = pulumi.Output.from_input(f"http://{public_host}:{settings.lb_port}")
        self.grpc_url = pulumi.Output.from_input(f"http://{public_host}:{settings.lb_grpc_port}")
        self.internal_url = pulumi.Output.from_input(f"http://{LB_ALIAS}:{REST_PORT}")

        self.collections = [
            QdrantCollection(
                f"{name}-collection-{collection.name}",
                QdrantCollectionArgs(
                    url=self.url,
                    api_key=self.api_key,
                    name=collection.name,
                    vector_size=collection.vector_size,
                    distance=collection.distance,
                    shard_number=collection.shard_number,
                    replication_factor=collection.replication_factor,
                    write_consistency_factor=collection.write_consistency_factor,
                    expected_peers=settings.nodes,
                    delete_with_points=collection.delete_with_points,
                ),
                # Without the opt-in the collection outlives its resource: `pulumi destroy` (and
                # removing the entry) leave its points in the node volumes.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.lb, *nodes],
                    retain_on_delete=not collection.delete_with_points,
                ),
            )
            for collection in settings.collections
        ]
        self._collections_by_name = {
            c.name: resource for c, resource in zip(settings.collections, self.collections, strict=True)
        }
        self.register_outputs(
            {
                "url": self.url,
                "grpcUrl": self.grpc_url,
                "internalUrl": self.internal_url,
                "apiKey": self.api_key,
                "nodeCount": settings.nodes,
            }
        )

    def collection(self, name: str) -> QdrantCollection:
        """The QdrantCollection resource of a configured collection."""
        return self._collections_by_name[name]
