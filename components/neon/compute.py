"""NeonCompute: one Postgres compute (compute_ctl) for one Neon timeline, as a Swarm service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.neon.config import COMPUTE_PG_PORT
from components.platform.hosts import DockerHosts
from components.platform.service import HealthCheck, ServiceFile, ServiceSpec, SwarmService

CONFIG_PATH = "/var/db/postgres/configs/config.json"


@dataclass(frozen=True, kw_only=True)
class ComputeImageArgs:
    """Where a service of the compute image runs and how it is reached."""

    hosts: DockerHosts
    image: str
    alias: str
    """DNS name on the stack network (`neon-compute`, `neon-compute-<branch>`, `neon-pooler`)."""
    port: int
    """Host port it is published on (host mode: on the nodes that run one of its tasks)."""
    memory_mb: int | None = None


@dataclass(frozen=True, kw_only=True)
class NeonComputeArgs(ComputeImageArgs):
    """Inputs of one compute."""

    config_json: pulumi.Output[str]
    """`render_compute_config(...)` over outputs; secret (it holds the role's password verifier)."""


def compute_image_service(
    parent: pulumi.Resource,
    name: str,
    args: ComputeImageArgs,
    *,
    program: str,
    internal_port: int,
    files: Sequence[ServiceFile],
    component: str,
    args_: Sequence[str] | None = None,
    command: Sequence[str] | None = None,
    replicas: int = 1,
    exclusive: bool = False,
    ready_user: str | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
) -> SwarmService:
    """A service of the compute image on the stack network, published on `args.port`, healthy
    when `pg_isready` answers on `internal_port` (the image has no curl, but pg_isready). It
    holds no data: Swarm starts it again on any node when its node fails. The service is
    `<name>-<program>`."""
    hosts = args.hosts
    ready = ["CMD", "/usr/local/bin/pg_isready", "-h", "localhost", "-p", str(internal_port)]
    return hosts.service(
        f"{name}-{program}",
        ServiceSpec(
            alias=args.alias,
            component=component,
            image=hosts.image_ref(f"{name}-image", args.image, parent),
            command=command,
            args=args_,
            files=files,
            replicas=replicas,
            exclusive=exclusive,
            ports={internal_port: args.port},
            memory_mb=args.memory_mb,
            health=HealthCheck(
                [*ready, "-U", ready_user] if ready_user else ready, retries=6, start_period="60s"
            ),
        ),
        parent=parent,
        depends_on=depends_on,
    )


class NeonCompute(pulumi.ComponentResource):
    """compute_ctl: syncs the safekeepers, fetches a basebackup from the pageserver and runs
    Postgres. Every start is a fresh start, so it needs no volume (facts/neon.md §2)."""

    service: SwarmService

    def __init__(self, name: str, args: NeonComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonCompute", name, None, opts)
        hosts = args.hosts
        self.service = compute_image_service(
            self,
            name,
            args,
            program="postgres",
            internal_port=COMPUTE_PG_PORT,
            # The image's entrypoint is compute_ctl; cloud_admin is trusted on localhost by the
            # pg_hba.conf that comes with the basebackup.
            args_=[
                "--pgdata",
                "/var/db/postgres/compute",
                "--connstr",
                f"postgresql://cloud_admin@localhost:{COMPUTE_PG_PORT}/postgres",
                "--pgbin",
                "/usr/local/bin/postgres",
                "--compute-id",
                f"{hosts.prefix}-{args.alias}",
                "--config",
                CONFIG_PATH,
            ],
            files=[ServiceFile(CONFIG_PATH, pulumi.Output.secret(args.config_json), secret=True)],
            component="neon-compute",
            # One writer per timeline: two computes would fight over the safekeepers' term,
            # so an update stops the old one before the new one starts.
            exclusive=True,
            ready_user="cloud_admin",
        )
        self.register_outputs({"alias": args.alias, "port": args.port})
