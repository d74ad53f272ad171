"""NeonPooler: pgbouncer beside the main compute, from the compute image itself.

The compute image ships pgbouncer 1.24.1 at /usr/local/bin/pgbouncer, but only Neon's VM image
starts it (compute/compute-node.Dockerfile, vm-image-spec-*.yaml): here it is its own Swarm
service, by default one task per host (at most one per node), published on `neon.poolerPort` in host mode
so every host answers; transaction pooling, SCRAM against the role's stored verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.neon.compute import ComputeImageArgs, compute_image_service
from components.neon.config import POOLER_DIR, POOLER_PORT, POOLER_TLS_CERT, POOLER_TLS_KEY
from components.platform.service import ServiceFile, SwarmService
from components.platform.tls import TlsMaterial


@dataclass(frozen=True)
class NeonPoolerArgs:
    """Inputs of the pooler: where it runs (as for a compute) and its two files."""

    service: ComputeImageArgs
    """Hosts, the compute image (it carries pgbouncer), alias, published port, memory."""
    replicas: int
    ini: str
    """`render_pgbouncer_ini(...)`."""
    userlist: pulumi.Output[str]
    """`render_pgbouncer_userlist(...)` over outputs; secret (the role's SCRAM verifier)."""
    tls: TlsMaterial | None = None
    """The certificate and key the ini names (`POOLER_TLS_CERT`, `POOLER_TLS_KEY`)."""


class NeonPooler(pulumi.ComponentResource):
    """pgbouncer in front of the main compute."""

    service: SwarmService

    def __init__(self, name: str, args: NeonPoolerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:NeonPooler", name, None, opts)
        self.service = compute_image_service(
            self,
            name,
            args.service,
            program="pgbouncer",
            internal_port=POOLER_PORT,
            # The image's user is postgres (pgbouncer refuses to run as root); its entrypoint
            # is compute_ctl, replaced here.
            command=["/usr/local/bin/pgbouncer"],
            args_=[f"{POOLER_DIR}/pgbouncer.ini"],
            files=[
                ServiceFile(f"{POOLER_DIR}/pgbouncer.ini", args.ini),
                ServiceFile(f"{POOLER_DIR}/userlist.txt", pulumi.Output.secret(args.userlist), secret=True),
                *(
                    [
                        ServiceFile(POOLER_TLS_CERT, args.tls.certificate),
                        ServiceFile(POOLER_TLS_KEY, args.tls.private_key, secret=True),
                    ]
                    if args.tls
                    else []
                ),
            ],
            replicas=args.replicas,
            component="neon-pooler",
        )
        self.register_outputs({"alias": args.service.alias, "port": args.service.port})
