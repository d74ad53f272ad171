"""NeonCompute: one Postgres compute (compute_ctl) for one Neon timeline."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.neon.config import COMPUTE_PG_PORT
from components.platform.hosts import DockerHosts

CONFIG_PATH = "/var/db/postgres/configs/config.json"


@dataclass(frozen=True, kw_only=True)
class ComputeImageArgs:
    """Where a container of the compute image runs and how it is reached."""

    hosts: DockerHosts
    image: str
    alias: str
    """DNS name on the stack network (`neon-compute`, `neon-compute-<branch>`, `neon-pooler`)."""
    port: int
    """Host port it is published on."""
    memory_mb: int | None = None


@dataclass(frozen=True, kw_only=True)
class NeonComputeArgs(ComputeImageArgs):
    """Inputs of one compute."""

    config_json: pulumi.Output[str]
    """`render_compute_config(...)` over outputs; secret (it holds the role's password verifier)."""


def compute_image_container(
    parent: pulumi.Resource,
    name: str,
    args: ComputeImageArgs,
    *,
    internal_port: int,
    command: list[str],
    uploads: list[docker.ContainerUploadArgs],
    component: str,
    entrypoints: list[str] | None = None,
    ready_user: str | None = None,
) -> docker.Container:
    """A container of the compute image on the stack network, published on `args.port`,
    ready when `pg_isready` answers on `internal_port` (the image has no curl, but pg_isready)."""
    hosts = args.hosts
    child = pulumi.ResourceOptions(parent=parent, provider=hosts.providers[0])
    image = hosts.pull(f"{name}-image", args.image, child)
    ready = ["CMD", "/usr/local/bin/pg_isready", "-h", "localhost", "-p", str(internal_port)]
    return docker.Container(
        f"{name}-container",
        name=f"{hosts.prefix}-{args.alias}",
        image=image.image_id,
        entrypoints=entrypoints,
        command=command,
        uploads=uploads,
        ports=[docker.ContainerPortArgs(internal=internal_port, external=args.port)],
        networks_advanced=hosts.attach(args.alias),
        restart="always",
        memory=args.memory_mb,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=[*ready, "-U", ready_user] if ready_user else ready,
            interval="10s",
            timeout="5s",
            retries=6,
            start_period="60s",
        ),
        labels=hosts.labels(component),
        opts=child,
    )


class NeonCompute(pulumi.ComponentResource):
    """compute_ctl: syncs the safekeepers, fetches a basebackup from the pageserver and runs
    Postgres. Every start is a fresh start, so it needs no volume (facts/neon.md §2)."""

    container: docker.Container

    def __init__(self, name: str, args: NeonComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonCompute", name, None, opts)
        hosts = args.hosts
        self.container = compute_image_container(
            self,
            name,
            args,
            internal_port=COMPUTE_PG_PORT,
            # The image's entrypoint is compute_ctl; cloud_admin is trusted on localhost by the
            # pg_hba.conf that comes with the basebackup.
            command=[
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
            uploads=[
                docker.ContainerUploadArgs(file=CONFIG_PATH, content=pulumi.Output.secret(args.config_json))
            ],
            component="neon-compute",
            ready_user="cloud_admin",
        )
        self.register_outputs({"alias": args.alias, "port": args.port})
