"""NeonPooler: pgbouncer beside the main compute, from the compute image itself.

The compute image ships pgbouncer 1.24.1 at /usr/local/bin/pgbouncer, but only Neon's VM image
starts it (compute/compute-node.Dockerfile, vm-image-spec-*.yaml): here it is its own container,
published on `neon.poolerPort`, transaction pooling, SCRAM against the role's stored verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.neon.config import POOLER_DIR, POOLER_PORT
from components.platform.hosts import DockerHosts


@dataclass(frozen=True)
class NeonPoolerArgs:
    """Inputs of the pooler."""

    hosts: DockerHosts
    image: str
    """The compute image (it carries pgbouncer)."""
    alias: str
    port: int
    """Host port the pooler is published on (`neon.poolerPort`)."""
    ini: str
    """`render_pgbouncer_ini(...)`."""
    userlist: pulumi.Output[str]
    """`render_pgbouncer_userlist(...)` over outputs; secret (the role's SCRAM verifier)."""
    memory_mb: int | None = None


class NeonPooler(pulumi.ComponentResource):
    """pgbouncer in front of the main compute."""

    container: docker.Container

    def __init__(self, name: str, args: NeonPoolerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonPooler", name, None, opts)
        hosts = args.hosts
        child = pulumi.ResourceOptions(parent=self, provider=hosts.providers[0])
        image = hosts.pull(f"{name}-image", args.image, child)
        self.container = docker.Container(
            f"{name}-container",
            name=f"{hosts.prefix}-{args.alias}",
            image=image.image_id,
            # The image's user is postgres (pgbouncer refuses to run as root); its entrypoint
            # is compute_ctl, replaced here.
            entrypoints=["/usr/local/bin/pgbouncer"],
            command=[f"{POOLER_DIR}/pgbouncer.ini"],
            uploads=[
                docker.ContainerUploadArgs(file=f"{POOLER_DIR}/pgbouncer.ini", content=args.ini),
                docker.ContainerUploadArgs(
                    file=f"{POOLER_DIR}/userlist.txt", content=pulumi.Output.secret(args.userlist)
                ),
            ],
            ports=[docker.ContainerPortArgs(internal=POOLER_PORT, external=args.port)],
            networks_advanced=hosts.attach(args.alias),
            restart="always",
            memory=args.memory_mb,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "/usr/local/bin/pg_isready", "-h", "localhost", "-p", str(POOLER_PORT)],
                interval="10s",
                timeout="5s",
                retries=6,
                start_period="30s",
            ),
            labels=hosts.labels("neon-pooler"),
            opts=child,
        )
        self.register_outputs({"alias": args.alias, "port": args.port})
