"""QdrantMigration: one collection's single-node -> cluster copy as a Pulumi dynamic resource.

Create migrates; diff re-runs only when an input changes; update re-runs (a no-op that
verifies again when the copy is complete) and returns full outputs; delete leaves all data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

INPUTS = (
    "source_url",
    "source_api_key",
    "target_url",
    "target_api_key",
    "collection",
    "target_collection",
    "batch_size",
    "shard_number",
    "replication_factor",
    "write_consistency_factor",
)


def _run(props: dict[str, Any]) -> dict[str, Any]:
    from migration.qdrant.engine import migrate_collection

    last_logged = [0.0]

    def progress(collection: str, copied: int, total: int, rate: float) -> None:
        now = time.monotonic()
        if copied < total and now - last_logged[0] < 5.0:
            return
        last_logged[0] = now
        percent = 100.0 * copied / total if total else 100.0
        pulumi.log.info(
            f"qdrant migration {collection}: {copied}/{total} points ({percent:.1f}%), {rate:,.0f} points/s"
        )

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
        progress=progress,
    )
    summary = report.as_dict()
    if not report.ok:
        raise RuntimeError(f"qdrant migration of {props['collection']} did not verify: {summary}")
    return {**props, "report": summary}


class QdrantMigrationProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"qdrant-migration-{props['collection']}", outs=_run(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in INPUTS if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_run(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # The copied points stay; the old single node was never written.
        return None


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
                "report": None,
            },
            opts,
        )
