"""NeonCompute: one Postgres compute (compute_ctl) for one Neon timeline."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.neon.config import COMPUTE_PG_PORT
from components.platform.hosts import DockerHosts

CONFIG_PATH = "/var/db/postgres/configs/config.json"


@dataclass(frozen=True)
class NeonComputeArgs:
    """Inputs of one compute."""

    hosts: DockerHosts
    image: str
    alias: str
    """DNS name on the stack network (`neon-compute`, `neon-compute-<branch>`)."""
    port: int
    """Host port the compute's Postgres is published on."""
    config_json: pulumi.Output[str]
    """`render_compute_config(...)` over outputs; secret (it holds the role's password hash)."""
    memory_mb: int | None = None


class NeonCompute(pulumi.ComponentResource):
    """compute_ctl: syncs the safekeepers, fetches a basebackup from the pageserver and runs
    Postgres. Every start is a fresh start, so it needs no volume (facts/neon.md §2)."""

    container: docker.Container

    def __init__(self, name: str, args: NeonComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonCompute", name, None, opts)
        hosts = args.hosts
        child = pulumi.ResourceOptions(parent=self, provider=hosts.providers[0])
        image = hosts.pull(f"{name}-image", args.image, child)
        self.container = docker.Container(
            f"{name}-container",
            name=f"{hosts.prefix}-{args.alias}",
            image=image.image_id,
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
            ports=[docker.ContainerPortArgs(internal=COMPUTE_PG_PORT, external=args.port)],
            networks_advanced=hosts.attach(args.alias),
            restart="always",
            memory=args.memory_mb,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=[
                    "CMD",
                    "/usr/local/bin/pg_isready",
                    "-h",
                    "localhost",
                    "-p",
                    str(COMPUTE_PG_PORT),
                    "-U",
                    "cloud_admin",
                ],
                interval="10s",
                timeout="5s",
                retries=6,
                start_period="60s",
            ),
            labels=hosts.labels("neon-compute"),
            opts=child,
        )
        self.register_outputs({"alias": args.alias, "port": args.port})
