"""A small durable Postgres, as Kong's database and the Neon controller's use it: a Swarm
service pinned to the host of its volume."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.platform.hosts import DockerHosts
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec, SwarmService

DATA_PATH = "/var/lib/postgresql/data"
PASSWORD_FILE = "/run/secrets/postgres-password"  # noqa: S105 (a path)
"""A Swarm secret the official image's entrypoint reads (docker-entrypoint.sh file_env)."""


@dataclass(frozen=True)
class PostgresArgs:
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


def postgres_service(
    resource_name: str, args: PostgresArgs, host_index: int, parent: pulumi.Resource
) -> SwarmService:
    """The database as a Swarm service pinned to host `host_index` (where `volume_name`
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
