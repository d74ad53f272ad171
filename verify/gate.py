"""VerificationGate: `python -m verify` as a step of `pulumi up`, after every tier and migration.

A failed check fails `pulumi up` with the check's name and what it saw (on stderr, in the update
log); the JSON report (stdout) is the stack output `verification`. The stack's endpoints and
secrets reach the command as (secret) environment, never on its command line; they are also its
triggers, so it runs again whenever one of them changes.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

import pulumi
from pulumi_command import local

from verify.settings import VerifySettings

# The outputs the checks read, as environment variables of the command (see verify/__main__.py).
ENV = {
    "neonDatabaseUrl": "RAG_VERIFY_NEON_DATABASE_URL",
    "neonStatusUrls": "RAG_VERIFY_NEON_STATUS_URLS",
    "neonTenantId": "RAG_VERIFY_NEON_TENANT_ID",
    "neonTimelineIds": "RAG_VERIFY_NEON_TIMELINE_IDS",
    "neonBranchUrls": "RAG_VERIFY_NEON_BRANCH_URLS",
    "qdrantUrl": "RAG_VERIFY_QDRANT_URL",
    "qdrantGrpcUrl": "RAG_VERIFY_QDRANT_GRPC_URL",
    "qdrantApiKey": "RAG_VERIFY_QDRANT_API_KEY",
    "kongProxyUrl": "RAG_VERIFY_KONG_PROXY_URL",
    "kongJwtCredentials": "RAG_VERIFY_KONG_JWT_CREDENTIALS",
    "kongAdminUrl": "RAG_VERIFY_KONG_ADMIN_URL",
    "tlsCertificate": "RAG_VERIFY_TLS_CERTIFICATE",
}


@dataclass(frozen=True)
class VerificationGateArgs:
    """What the gate checks."""

    stack: str
    settings: VerifySettings
    outputs: dict[str, pulumi.Input[str]]
    """Stack outputs by name (keys of ENV), each a string (a map as JSON); a tier that is off
    has none."""


class VerificationGate(pulumi.ComponentResource):
    """Runs the post-deploy checks; its `report` is the JSON the checks print."""

    report: pulumi.Output[str]

    def __init__(
        self, name: str, args: VerificationGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rag-infra:index:VerificationGate", name, None, opts)
        unknown = sorted(set(args.outputs) - set(ENV))
        if unknown:
            raise ValueError(f"VerificationGate: no environment variable for {', '.join(unknown)}")
        command = [
            sys.executable, "-m", "verify", "--stack", args.stack, "--outputs-env", "--json",
            "--p95-ms", str(args.settings.p95_ms), "--runs", str(args.settings.runs),
        ] + (["--load"] if args.settings.load.enabled else [])  # fmt: skip
        if args.settings.failover:
            # The stack's config asked for the drill: that is the consent --force stands for.
            command += ["--failover", "--force"]
        environment = {ENV[key]: pulumi.Output.secret(value) for key, value in args.outputs.items()}
        self.command = local.Command(
            f"{name}-checks",
            create=shlex.join(command),
            environment=environment,
            triggers=[pulumi.Output.secret(value) for value in args.outputs.values()],
            # The checks' lines go to the update log; stdout is the JSON report.
            logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.report = self.command.stdout
        self.register_outputs({"report": self.report})
