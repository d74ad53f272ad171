"""RagSchema: a dynamic resource that applies schema/*.sql to the Neon compute once it is up."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


def _apply(props: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    from migration.schema import apply_schema

    deadline = time.monotonic() + float(props["timeout"])
    while True:
        try:
            applied = apply_schema(props["dsn"])
            break
        except psycopg.OperationalError as err:
            # The compute accepts connections only after compute_ctl has synced the safekeepers
            # and fetched a basebackup; wait for it, then report what it last said.
            if time.monotonic() > deadline:
                reason = str(err).strip().splitlines()[0]
                raise RuntimeError(f"the Neon compute did not accept connections: {reason}") from None
            time.sleep(2)
    if applied:
        pulumi.log.info(f"RAG schema: applied {', '.join(applied)}")
    return {**props, "applied": applied}


class RagSchemaProvider(ResourceProvider):
    """Create and update apply what is missing (a no-op when nothing is); delete keeps the data."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="rag-schema", outs=_apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("dsn", "versions") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=_apply(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # Dropping tables is never what removing this resource should do; the database goes
        # with the stack's volumes on `pulumi destroy`.
        return None


@dataclass(frozen=True)
class RagSchemaArgs:
    """Where to apply the schema."""

    dsn: pulumi.Input[str]
    """The compute's DSN as reachable from where `pulumi up` runs (secret)."""
    versions: list[str]
    """`schema_fingerprint()`: a new or changed file triggers an update."""
    timeout: float = 300.0


class RagSchema(pulumi.dynamic.Resource, module="neon", name="RagSchema"):
    """pgvector, pg_trgm, uuid-ossp, the rag tables, HNSW and trigram indexes, query_log_hourly."""

    applied: pulumi.Output[list]

    def __init__(self, name: str, args: RagSchemaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            RagSchemaProvider(),
            name,
            {
                "dsn": pulumi.Output.secret(args.dsn),
                "versions": args.versions,
                "timeout": args.timeout,
                "applied": None,
            },
            opts,
        )
