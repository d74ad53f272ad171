"""A small durable Postgres container, as Kong's database and the Neon controller's use it."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.hosts import DockerHosts

DATA_PATH = "/var/lib/postgresql/data"


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
