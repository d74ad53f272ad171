"""QdrantMigration: one collection's single-node -> cluster copy as a Pulumi dynamic resource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from migration.provider import MigrationProvider, throttled_progress


class QdrantMigrationProvider(MigrationProvider):
    """One collection copied and verified; see migration.provider for the lifecycle."""

    inputs = (
        "source_url",
        "source_api_key",
        "target_url",
        "target_api_key",
        "target_ca_certificate",
        "collection",
        "target_collection",
        "batch_size",
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
    )

    def resource_id(self, props: dict[str, Any]) -> str:
        return f"qdrant-migration-{props['collection']}"

    def run(self, props: dict[str, Any]) -> dict[str, Any]:
        from migration.qdrant.engine import migrate_collection

        report = migrate_collection(
            props["source_url"],
            props["target_url"],
            props["collection"],
            target_collection=props.get("target_collection") or None,
            batch_size=int(props["batch_size"]),
            shard_number=props.get("shard_number"),
            replication_factor=props.get("replication_factor"),
            write_consistency_factor=props.get("write_consistency_factor"),
            source_api_key=props.get("source_api_key") or None,
            target_api_key=props.get("target_api_key") or None,
            target_ca_certificate=props.get("target_ca_certificate") or None,
            progress=throttled_progress("qdrant migration", "points"),
        )
        summary = report.as_dict()
        if not report.ok:
            found = "; ".join(report.differences[:3])
            raise RuntimeError(f"qdrant migration of {props['collection']} did not verify: {found}")
        return {**props, "report": summary}


@dataclass(frozen=True)
class QdrantMigrationArgs:
    """Inputs of one collection's migration; API keys are secret."""

    source_url: str
    source_api_key: pulumi.Input[str] | None
    target_url: pulumi.Input[str]
    target_api_key: pulumi.Input[str]
    collection: str
    batch_size: int
    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None
    target_ca_certificate: pulumi.Input[str] | None = None
    """The cluster LB's TLS certificate chain, when `target_url` is https with the stack's own."""


class QdrantMigration(pulumi.dynamic.Resource, module="migration", name="Qdrant"):
    """Points, payloads and every vector copied from the old Qdrant, verified by count, a sample
    and recall@10 of exact searches."""

    report: pulumi.Output[dict]

    def __init__(
        self, name: str, args: QdrantMigrationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            QdrantMigrationProvider(),
            name,
            {
                "source_url": args.source_url,
                "source_api_key": pulumi.Output.secret(args.source_api_key or ""),
                "target_url": args.target_url,
                "target_api_key": pulumi.Output.secret(args.target_api_key),
                "collection": args.collection,
                "target_collection": args.collection,
                "batch_size": args.batch_size,
                "shard_number": args.shard_number,
                "replication_factor": args.replication_factor,
                "write_consistency_factor": args.write_consistency_factor,
                # Only with TLS: a plaintext stack's inputs stay as they were (no diff).
                **(
                    {"target_ca_certificate": args.target_ca_certificate}
                    if args.target_ca_certificate is not None
                    else {}
                ),
                "report": None,
            },
            opts,
        )
