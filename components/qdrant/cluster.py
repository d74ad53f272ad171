"""QdrantCluster: N Qdrant nodes in one Raft cluster behind an NGINX load balancer."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import yaml

from components.monitoring.scrape import ScrapeJob, ScrapeTarget
from components.platform.hosts import DockerHosts, round_robin
from components.platform.probes import bash_http_probe
from components.platform.secrets import secret_or_generated
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec, SwarmService
from components.platform.settings import image_version
from components.platform.tls import TlsMaterial
from components.qdrant.collection import QdrantCollection, QdrantCollectionArgs
from components.qdrant.lb_config import (
    LB_HEALTH_PATH,
    METRICS_PORT,
    LbOptions,
    LbTls,
    Upstream,
    render_qdrant_lb_conf,
)
from components.qdrant.member_gate import QdrantMemberReady, QdrantMemberReadyArgs
from components.qdrant.settings import QdrantSettings

REST_PORT = 6333
GRPC_PORT = 6334
P2P_PORT = 6335  # Raft and internal gRPC: never published to a host
LB_ALIAS = "qdrant-lb"
LB_TLS = LbTls(
    certificate_path="/etc/nginx/tls/certificate.pem", key_path="/run/secrets/qdrant-lb-tls-key.pem"
)
"""Where the LB reads its TLS pair (the key a Swarm secret); its TLS ports 6443/6444 are the
published ones."""
API_KEY_FILE = "/run/secrets/qdrant-api-key.yaml"
"""A Swarm secret holding `service.api_key`, layered over the image's config by --config-path
(the environment would show the key to anyone who can inspect the service)."""


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


def scrape_jobs(settings: QdrantSettings, api_key_file: str) -> list[ScrapeJob]:
    """Each node's /metrics, which wants the API key: Prometheus sends it from `api_key_file`
    as a bearer token (Qdrant takes `Authorization: Bearer <key>` as well as `api-key`,
    src/common/auth/mod.rs). And each LB task's connection gauges (lb_config.py)."""
    return [
        ScrapeJob(
            "qdrant",
            "qdrant",
            targets=[
                ScrapeTarget(f"{node_alias(i)}:{REST_PORT}", node_alias(i)) for i in range(settings.nodes)
            ],
            bearer_file=api_key_file,
        ),
        ScrapeJob("qdrant-lb", "qdrant", dns_name=LB_ALIAS, port=METRICS_PORT),
    ]


@dataclass(frozen=True)
class QdrantClusterArgs:
    """Inputs of the Qdrant tier."""

    settings: QdrantSettings
    hosts: DockerHosts
    api_key: pulumi.Output[str] | None
    """Configured `qdrantApiKey`; generated when None."""
    tls: TlsMaterial | None = None
    """The public listeners' certificate: the LB then publishes TLS ports only."""


class QdrantCluster(pulumi.ComponentResource):
    """Qdrant nodes (Swarm services pinned to their hosts' volumes, spread over the hosts,
    rolled out one at a time), the LB on every host, and the collections."""

    url: pulumi.Output[str]
    urls: list[pulumi.Output[str]]
    """The LB on every host (each host answers): what an external balancer or DNS points at."""
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

        # The LB first: it answers its own health check with no node up yet (nginx resolves the
        # node names at run time), and the gates below reach the cluster through it.
        tls = args.tls
        lb_conf = render_qdrant_lb_conf(
            [Upstream(node_alias(i), REST_PORT, GRPC_PORT) for i in range(settings.nodes)],
            LbOptions(
                nginx_version=image_version(settings.lb_image) or (1, 0, 0), tls=LB_TLS if tls else None
            ),
        )
        lb_files = [ServiceFile("/etc/nginx/nginx.conf", lb_conf)]
        if tls:
            lb_files += [
                ServiceFile(LB_TLS.certificate_path, tls.certificate),
                ServiceFile(LB_TLS.key_path, tls.private_key, secret=True),
            ]
        # Clients outside the stack reach the TLS listeners only; the plaintext ones serve the
        # stack's own network (appEnv's internal URL) and the LB's health check.
        published = (
            {LB_TLS.rest_port: settings.lb_port, LB_TLS.grpc_port: settings.lb_grpc_port}
            if tls
            else {REST_PORT: settings.lb_port, GRPC_PORT: settings.lb_grpc_port}
        )
        self.lb = hosts.service(
            f"{name}-lb",
            ServiceSpec(
                alias=LB_ALIAS,
                component="qdrant-lb",
                image=hosts.image_ref(f"{name}-lb-image", settings.lb_image, self),
                files=lb_files,
                # One task per host (at most one per node), published in host mode: any host
                # answers, none is the one door.
                replicas=settings.lb_replicas or hosts.host_count,
                ports=published,
                memory_mb=256 if settings.memory_mb else None,
                health=HealthCheck(
                    # busybox wget in the alpine image; nginx answers this path itself.
                    ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{REST_PORT}{LB_HEALTH_PATH}"],
                ),
            ),
            parent=self,
        )

        scheme = "https" if tls else "http"
        self.urls = hosts.public_urls(settings.lb_port, scheme)
        self.url = self.urls[0]
        self.grpc_url = pulumi.Output.from_input(
            f"{scheme}://{hosts.reachable_host(0)}:{settings.lb_grpc_port}"
        )
        ca_certificate = tls.certificate if tls else None
        self.internal_url = pulumi.Output.from_input(f"http://{LB_ALIAS}:{REST_PORT}")
        self.node_urls = [f"http://{node_alias(i)}:{REST_PORT}" for i in range(settings.nodes)]
        """Each node's own REST API on the stack network (snapshots are per node)."""

        api_key_file = self.api_key.apply(lambda key: yaml.safe_dump({"service": {"api_key": key}}))
        image = hosts.image_ref(f"{name}-image", settings.image, self)
        self.nodes: list[SwarmService] = []
        gates: list[QdrantMemberReady] = []
        for index, slot in enumerate(round_robin(settings.nodes, hosts.host_count)):
            pinned = pulumi.ResourceOptions(parent=self, provider=hosts.providers[slot])
            storage = hosts.volume(f"{name}-storage-{index}", f"qdrant-{index}-storage", "qdrant", pinned)
            snapshots = hosts.volume(
                f"{name}-snapshots-{index}", f"qdrant-{index}-snapshots", "qdrant", pinned
            )
            node = hosts.service(
                f"{name}-node-{index}",
                ServiceSpec(
                    alias=node_alias(index),
                    component="qdrant",
                    image=image,
                    hostname=node_alias(index),
                    args=[*node_command(index), "--config-path", API_KEY_FILE],
                    env={"QDRANT__CLUSTER__ENABLED": "true", "QDRANT__CLUSTER__P2P__PORT": str(P2P_PORT)},
                    files=[ServiceFile(API_KEY_FILE, api_key_file, secret=True)],
                    mounts=[
                        Mount(storage.name, "/qdrant/storage"),
                        Mount(snapshots.name, "/qdrant/snapshots"),
                    ],
                    pinned_to=slot,
                    # Raft and the internal gRPC between nodes are long-lived connections to one
                    # peer each: DNS round robin gives each name the task's own address, where a
                    # virtual IP would put IPVS (and its idle-connection expiry) in between.
                    endpoint_mode="dnsrr",
                    memory_mb=settings.memory_mb,
                    health=HealthCheck(
                        # /readyz: Qdrant's start-up gate (all local shards ready); never needs the API key.
                        bash_http_probe(REST_PORT, "/readyz"),
                        retries=6,
                        start_period="30s",
                    ),
                ),
                parent=self,
                # One node at a time, creation and every later rollout: each waits for the one
                # before it to be back in the cluster (followers bootstrap from node 0).
                depends_on=gates[-1:],
            )
            gates.append(
                QdrantMemberReady(
                    f"{name}-node-{index}-ready",
                    QdrantMemberReadyArgs(
                        url=self.url,
                        api_key=self.api_key,
                        peer_uri=f"http://{node_alias(index)}:{P2P_PORT}",
                        revision=node.revision,
                        ca_certificate=ca_certificate,
                    ),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[node, self.lb]),
                )
            )
            self.nodes.append(node)

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
                    ca_certificate=ca_certificate,
                ),
                # Without the opt-in the collection outlives its resource: `pulumi destroy` (and
                # removing the entry) leave its points in the node volumes.
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=gates,
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
                "urls": self.urls,
                "grpcUrl": self.grpc_url,
                "internalUrl": self.internal_url,
                "apiKey": self.api_key,
                "nodeCount": settings.nodes,
            }
        )

    def collection(self, name: str) -> QdrantCollection:
        """The QdrantCollection resource of a configured collection."""
        return self._collections_by_name[name]
