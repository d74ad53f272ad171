"""A small durable Postgres, as Kong's database and the Neon controller's use it: a plain
container, or a Swarm service pinned to the host of its volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.hosts import DockerHosts
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec, SwarmService

DATA_PATH = "/var/lib/postgresql/data"
PASSWORD_FILE = "/run/secrets/postgres-password"  # noqa: S105 (a path)
"""A Swarm secret the official image's entrypoint reads (docker-entrypoint.sh file_env)."""


@dataclass(frozen=True)
class PostgresContainerArgs:
    """One database on its own named volume, reachable as `alias` on the stack network."""

    hosts: DockerHosts
    image: pulumi.Input[str]
    alias: str
    user: str
    database: str
    password: pulumi.Output[str]
    volume_name: pulumi.Input[str]
    component: str
    memory_mb: int | None
    health_retries: int


def postgres_container(
    resource_name: str, args: PostgresContainerArgs, opts: pulumi.ResourceOptions
) -> docker.Container:
    """The container; Pulumi waits until `pg_isready` answers, so dependants start after it."""
    return docker.Container(
        resource_name,
        name=f"{args.hosts.prefix}-{args.alias}",
        image=args.image,
        envs=[
            f"POSTGRES_USER={args.user}",
            f"POSTGRES_DB={args.database}",
            args.password.apply(lambda p: f"POSTGRES_PASSWORD={p}"),
        ],
        volumes=[docker.ContainerVolumeArgs(volume_name=args.volume_name, container_path=DATA_PATH)],
        networks_advanced=args.hosts.attach(args.alias),
        restart="always",
        memory=args.memory_mb,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=["CMD", "pg_isready", "-U", args.user, "-d", args.database],
            interval="5s",
            timeout="5s",
            retries=args.health_retries,
        ),
        wait=True,
        wait_timeout=120,
        labels=args.hosts.labels(args.component),
        opts=opts,
    )


def postgres_service(
    resource_name: str, args: PostgresContainerArgs, host_index: int, parent: pulumi.Resource
) -> SwarmService:
    """The same database as a Swarm service pinned to host `host_index` (where `volume_name`
    lives); the password reaches it as a Swarm secret file, never in its environment. Dependants
    start once it converged: its task runs, healthy."""
    return args.hosts.service(
        resource_name,
        ServiceSpec(
            alias=args.alias,
            component=args.component,
            image=args.image,
            env={
                "POSTGRES_USER": args.user,
                "POSTGRES_DB": args.database,
                "POSTGRES_PASSWORD_FILE": PASSWORD_FILE,
            },
            files=[ServiceFile(PASSWORD_FILE, args.password, secret=True)],
            mounts=[Mount(args.volume_name, DATA_PATH)],
            pinned_to=host_index,
            memory_mb=args.memory_mb,
            health=HealthCheck(
                ["CMD", "pg_isready", "-U", args.user, "-d", args.database],
                interval="5s",
                retries=args.health_retries,
            ),
        ),
        parent=parent,
    )
