"""Neon's object storage: MinIO, one server per node, erasure-coded over the hosts.

With `objectStorage.nodes` > 1 the servers form one distributed deployment: every node is
started with the same endpoint list (`http://minio-{0...N-1}:9000/data{0...D-1}`) and finds
itself in it by resolving each name to its own address (MinIO cmd/net.go isLocalHost: the
name's IPs against the local interfaces, and the port must be `--address`'s). The N x D drives
make one erasure set (cmd/endpoint-ellipses.go picks the largest set size, 2 to 16, that
divides the drives) with MinIO's default parity (internal/config/storageclass: 1 for 2-3
drives, 2 for 4-5, 3 for 6-7, 4 from 8). Writes need `write_quorum` drives, reads
`read_quorum` (cmd/erasure.go defaultWQuorum/defaultRQuorum): prod's 3 nodes x 2 drives keep
both with any one node lost.

Each node is a Swarm service pinned to its host (round robin) with its own volumes, and is
reached by its own name (`minio-<i>`, how the servers find each other) and by the shared
name `minio` (DNS round robin over the nodes: what the pageserver and safekeepers use, so a
lost node only removes one address). A fresh deployment formats its drives only once every
drive is online (cmd/prepare-storage.go shouldInitErasureDisks), so the nodes are created
without waiting for each other; their health check is `/minio/health/live`, which answers
before the cluster has formed. Updates go one node at a time: node i+1 waits for
`MinioReady` (components/neon/minio_gate.py), which after a rollout sees node i back with a
write quorum and every other node online.

The layout (nodes, drives) is fixed for the life of a stack: MinIO cannot re-stripe formatted
drives onto another layout, and `ObjectStorageLayout` (components/neon/store_layout.py) refuses
a change before anything of the store is touched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.neon.config import MINIO_ALIAS, MINIO_PORT
from components.neon.minio_gate import MinioReady, MinioReadyArgs
from components.neon.settings import ObjectStorageSettings
from components.neon.store_layout import ObjectStorageLayout
from components.platform.hosts import DockerHosts, round_robin
from components.platform.jobs import OneShotJob, OneShotJobArgs
from components.platform.operator_access import Forward
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec, SwarmService

MINIO_CLUSTER_METRICS_PATH = "/minio/v2/metrics/cluster"
"""The whole deployment's metrics, from any node (cmd/metrics-v2.go)."""
MINIO_USER = "neon"
MINIO_PASSWORD_FILE = "/run/secrets/minio-root-password"  # noqa: S105 (a path)
"""MinIO reads MINIO_ROOT_PASSWORD_FILE at start (cmd/common-main.go loadEnvVarsFromFiles)."""
CONSOLE_PORT = 9001
CLUSTER_HEALTH = "/minio/health/cluster"
"""200 only while the store is formed with a write quorum of drives online."""
BUCKET_ATTEMPTS = 30
"""The bucket job's tries, 2 s apart: a new distributed store answers S3 only once every node
is up and the first has formatted the drives."""


def default_parity(drives: int) -> int:
    """MinIO's parity for an erasure set of `drives` (storageclass DefaultParityBlocks)."""
    if drives <= 1:
        return 0
    if drives <= 3:
        return 1
    if drives <= 5:
        return 2
    if drives <= 7:
        return 3
    return 4


def write_quorum(drives: int) -> int:
    """Drives a write needs: the data drives, one more when data and parity are even."""
    parity = default_parity(drives)
    data = drives - parity
    return data + 1 if data == parity else data


def read_quorum(drives: int) -> int:
    """Drives a read needs: the data drives."""
    return drives - default_parity(drives)


def writes_survive_losing_any_host(drives_by_host: dict[str, int]) -> bool:
    """Whether the store still takes writes after any one host (with all its drives) is lost."""
    total = sum(drives_by_host.values())
    if len(drives_by_host) < 2:
        return False
    return all(total - lost >= write_quorum(total) for lost in drives_by_host.values())


def node_alias(settings: ObjectStorageSettings, index: int) -> str:
    """A node's own name: `minio` for a single server, `minio-<i>` in a distributed store."""
    return MINIO_ALIAS if settings.nodes == 1 else f"{MINIO_ALIAS}-{index}"


def drive_paths(settings: ObjectStorageSettings) -> list[str]:
    """Where a node's volumes are mounted: /data for one drive, /data0… for several."""
    if settings.drives_per_node == 1:
        return ["/data"]
    return [f"/data{j}" for j in range(settings.drives_per_node)]


def server_args(settings: ObjectStorageSettings) -> list[str]:
    """`server <endpoints> --address --console-address`: the same on every node."""
    drives = "/data" if settings.drives_per_node == 1 else f"/data{{0...{settings.drives_per_node - 1}}}"
    if settings.nodes == 1:
        endpoints = drives
    else:
        endpoints = f"http://{MINIO_ALIAS}-{{0...{settings.nodes - 1}}}:{MINIO_PORT}{drives}"
    return ["server", endpoints, "--address", f":{MINIO_PORT}", "--console-address", f":{CONSOLE_PORT}"]


_ELLIPSIS = re.compile(r"\{(\d+)\.\.\.(\d+)\}")


def expand_ellipses(pattern: str) -> list[str]:
    """`/data{0...1}` -> [/data0, /data1] (MinIO's ellipses, numeric ranges only)."""
    match = _ELLIPSIS.search(pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    first, last = int(match[1]), int(match[2])
    return [f"{head}{n}{rest}" for n in range(first, last + 1) for rest in expand_ellipses(tail)]


def minio_drive_paths(command: Sequence[str]) -> list[str]:
    """The drive paths a node serves, read back from `[minio] server <endpoints> [flags]`."""
    words = list(command)
    if "server" not in words:
        return []
    paths: list[str] = []
    for word in words[words.index("server") + 1 :]:
        if word.startswith("--"):
            break
        path = word.split("://", 1)[1].split("/", 1)[1] if "://" in word else word.lstrip("/")
        # Every node serves the same paths: the drives of one host are the distinct paths.
        paths += [f"/{p}" for p in expand_ellipses(path) if f"/{p}" not in paths]
    return paths


def operator_forwards(settings: ObjectStorageSettings) -> list[Forward]:
    """Each node's S3 API on the first host's loopback (apiPort + i): the rollout gates ask the
    nodes' health there, and operators reach `mc` through it."""
    return [
        Forward(settings.api_port + i, node_alias(settings, i), MINIO_PORT, f"MinIO node {i} S3 API")
        for i in range(settings.nodes)
    ]


@dataclass(frozen=True)
class ObjectStorageArgs:
    """What the store's services need."""

    settings: ObjectStorageSettings
    hosts: DockerHosts
    image: pulumi.Input[str]
    password: pulumi.Output[str]
    api_urls: Sequence[str]
    """Each node's API as reached from where `pulumi up` runs (OperatorAccess's forwards)."""
    memory_mb: int | None = None
    operator_access: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class ObjectStorage:
    """The store's nodes and the job that made its bucket (a dependency of its clients)."""

    nodes: list[SwarmService]
    gates: list[MinioReady]
    bucket: OneShotJob


def object_storage(name: str, args: ObjectStorageArgs, parent: pulumi.Resource) -> ObjectStorage:
    """The MinIO nodes (`<name>-minio` or `<name>-minio-<i>`), their gates and the bucket job."""
    settings, hosts = args.settings, args.hosts
    distributed = settings.nodes > 1
    # First: a changed layout fails here, before any node or volume is touched.
    layout = ObjectStorageLayout(
        f"{name}-object-storage-layout",
        settings.nodes,
        settings.drives_per_node,
        pulumi.ResourceOptions(parent=parent),
    )
    nodes: list[SwarmService] = []
    gates: list[MinioReady] = []
    for index, slot in enumerate(round_robin(settings.nodes, hosts.host_count)):
        member = f"{name}-minio-{index}" if distributed else f"{name}-minio"
        alias = node_alias(settings, index)
        mounts = []
        for drive, path in enumerate(drive_paths(settings)):
            what = f"minio-{index}" if distributed else "minio"
            suffix = "data" if settings.drives_per_node == 1 else f"data{drive}"
            volume = hosts.volume(
                f"{name}-{what}-{suffix}",
                f"neon-{what}-{suffix}",
                "neon",
                pulumi.ResourceOptions(parent=parent, provider=hosts.providers[slot], depends_on=[layout]),
            )
            mounts.append(Mount(volume.name, path))
        node = hosts.service(
            member,
            ServiceSpec(
                alias=alias,
                # Its peers find it by its own name; clients by the shared one.
                extra_aliases=[MINIO_ALIAS] if distributed else [],
                hostname=alias,
                component="neon-object-storage",
                image=args.image,
                args=server_args(settings),
                # Every node must hold the same root credentials: they sign the nodes' own
                # requests to each other (cmd/jwt.go authenticateNode).
                env={
                    "MINIO_ROOT_USER": MINIO_USER,
                    "MINIO_ROOT_PASSWORD_FILE": MINIO_PASSWORD_FILE,
                    # /minio/v2/metrics/* without a bearer token (cmd/metrics-router.go): only
                    # the stack network reaches the port, and Prometheus holds no S3 secret.
                    "MINIO_PROMETHEUS_AUTH_TYPE": "public",
                },
                files=[ServiceFile(MINIO_PASSWORD_FILE, args.password, secret=True)],
                mounts=mounts,
                pinned_to=slot,
                memory_mb=args.memory_mb,
                # Liveness only (200 before the cluster has formed, cmd/healthcheck-handler.go):
                # a node waiting for its peers is not broken, and `mc ready` would wait forever.
                health=HealthCheck(
                    [
                        "CMD",
                        "curl",
                        "-fsS",
                        "-o",
                        "/dev/null",
                        f"http://127.0.0.1:{MINIO_PORT}/minio/health/live",
                    ],
                    interval="5s",
                    retries=12,
                ),
            ),
            parent=parent,
            # One node at a time on every rollout: the next waits until this one is back in
            # the store with a write quorum.
            depends_on=[layout, *gates[-1:]],
        )
        gates.append(
            MinioReady(
                f"{member}-ready",
                MinioReadyArgs(urls=list(args.api_urls), index=index, revision=node.revision),
                pulumi.ResourceOptions(parent=parent, depends_on=[node, *args.operator_access]),
            )
        )
        nodes.append(node)

    script = (
        f'mc alias set neon http://{MINIO_ALIAS}:{MINIO_PORT} "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" '
        f"&& mc mb --ignore-existing neon/{settings.bucket} --region={settings.region}"
    )
    mc_image = hosts.pull(
        f"{name}-image-mc",
        settings.mc_image,
        pulumi.ResourceOptions(parent=parent, provider=hosts.providers[0]),
    )
    # Pulumi waits for it, so the pageserver never starts before the bucket; a bucket that
    # cannot be made fails `pulumi up`.
    bucket = OneShotJob(
        f"{name}-bucket",
        OneShotJobArgs(
            hosts=hosts,
            image=mc_image.image_id,
            script=script,
            env={"MINIO_ROOT_USER": MINIO_USER, "MINIO_ROOT_PASSWORD": args.password},
            attempts=BUCKET_ATTEMPTS,
            component="minio-bucket",
        ),
        pulumi.ResourceOptions(parent=parent, depends_on=[*nodes, *gates]),
    )
    return ObjectStorage(nodes=nodes, gates=gates, bucket=bucket)
