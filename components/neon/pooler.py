"""NeonPooler: pgbouncer beside the main compute, from the compute image itself.

The compute image ships pgbouncer 1.24.1 at /usr/local/bin/pgbouncer, but only Neon's VM image
starts it (compute/compute-node.Dockerfile, vm-image-spec-*.yaml): here it is its own container,
published on `neon.poolerPort`, transaction pooling, SCRAM against the role's stored verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.neon.compute import ComputeImageArgs, compute_image_container
from components.neon.config import POOLER_DIR, POOLER_PORT


@dataclass(frozen=True)
class NeonPoolerArgs:
    """Inputs of the pooler: where it runs (as for a compute) and its two files."""

    container: ComputeImageArgs
    """Hosts, the compute image (it carries pgbouncer), alias, published port, memory."""
    ini: str
    """`render_pgbouncer_ini(...)`."""
    userlist: pulumi.Output[str]
    """`render_pgbouncer_userlist(...)` over outputs; secret (the role's SCRAM verifier)."""


class NeonPooler(pulumi.ComponentResource):
    """pgbouncer in front of the main compute."""

    container: docker.Container

    def __init__(self, name: str, args: NeonPoolerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonPooler", name, None, opts)
        self.container = compute_image_container(
            self,
            name,
            args.container,
            internal_port=POOLER_PORT,
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
            component="neon-pooler",
        )
        self.register_outputs({"alias": args.container.alias, "port": args.container.port})
