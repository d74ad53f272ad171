"""A fake of the storage controller's tenant records as a recovery meets them: the debug drop and
import, the tenant config, readiness; the object storage is a FakeS3 bucket the pageserver writes.

As neondatabase/neon (HEAD 6a35a3e9) has them:
- `GET /ready`: 503 until the controller has started (http.rs handle_ready).
- `POST /debug/v1/tenant/<id>/drop` (service.rs tenant_drop): deletes the tenant's rows and
  in-memory shards, and nothing else; 200 `null`, also for a tenant it does not hold.
- `POST /debug/v1/tenant/<id>/import` (service.rs tenant_import): 400 "No nodes available"
  without an available pageserver; the pageserver's `scan_remote_storage` finds each shard's
  index generations (`tenants/<shard>/timelines/<tl>/index_part.json-<generation, 8 hex>`,
  remote_timeline_client); 404 "No shards found" when there is none. Then `do_tenant_create` at
  the highest generation with the default config, `Attached(0)`; a tenant the controller already
  holds keeps its row, generation included (create is idempotent). The first attach to a
  pageserver increments the generation.
- `GET /v1/tenant/<id>/config` (tenant_config_get): 404 "Tenant not found", else both halves are
  the tenant's own config (no defaults on the controller); fields that are unset are left out
  (TenantConfig's `skip_serializing_if`).
- `PUT /v1/tenant/config` (TenantConfigRequest, `deny_unknown_fields` with the config
  flattened): 400 for a field TenantConfig does not have; 404 for a tenant it does not hold.
"""

from __future__ import annotations

import re
from typing import Any

from tests.support.fake_http import FakeJsonServer
from tests.support.fake_s3 import FakeS3

TENANT_CONFIG_FIELDS = frozenset(
    {
        "checkpoint_distance",
        "checkpoint_timeout",
        "compaction_target_size",
        "compaction_period",
        "compaction_threshold",
        "gc_horizon",
        "gc_period",
        "image_creation_threshold",
        "pitr_interval",
        "walreceiver_connect_timeout",
        "lagging_wal_timeout",
        "max_lsn_wal_lag",
        "eviction_policy",
        "heatmap_period",
        "lsn_lease_length",
        "timeline_offloading",
    }
)
"""Some of libs/pageserver_api/src/models.rs TenantConfig's fields (the ones a test may set)."""
INDEX = re.compile(r"([0-9a-f]{32})(?:-[0-9a-f]{4})?/timelines/[0-9a-f]{32}/index_part\.json-([0-9a-f]{8})")


class FakeRecoveringController(FakeJsonServer):
    """Tenant records (`generation`, `config`) over the pageserver's bucket in `store`."""

    def __init__(self, store: FakeS3, bucket: str, tenants_prefix: str) -> None:
        super().__init__()
        self.store, self.bucket, self.prefix = store, bucket, tenants_prefix
        self.records: dict[str, dict[str, Any]] = {}
        self.ready = True
        self.no_nodes = 0
        """Imports answered "No nodes available" first (no heartbeat from a pageserver yet)."""
        self.fail_import: set[str] = set()
        """Tenants whose import answers 500 (a pageserver error passed through)."""

    def hold(self, tenant: str, generation: int, config: dict[str, Any]) -> None:
        self.records[tenant] = {"generation": generation, "config": dict(config)}

    def remote_generation(self, tenant: str) -> int | None:
        found = [
            int(m[2], 16)
            for key in self.store.buckets.get(self.bucket, {})
            if key.startswith(self.prefix)
            and (m := INDEX.fullmatch(key[len(self.prefix) :]))
            and m[1] == tenant
        ]
        return max(found) if found else None

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if parts == ["ready"] and method == "GET":
            return (200, None) if self.ready else (503, {"msg": "Service Unavailable: not ready"})
        if len(parts) == 5 and parts[:3] == ["debug", "v1", "tenant"] and method == "POST":
            return self._debug(parts[3], parts[4])
        if parts == ["v1", "tenant", "config"] and method == "PUT":
            unknown = set(body) - TENANT_CONFIG_FIELDS - {"tenant_id"}
            if unknown:
                return 400, {"msg": f"Bad request: unknown field `{sorted(unknown)[0]}`"}
            if body.get("tenant_id") not in self.records:
                return 404, {"msg": "NotFound: Tenant not found"}
            config = {k: v for k, v in body.items() if k != "tenant_id" and v is not None}
            self.records[body["tenant_id"]]["config"] = config
            return 200, None
        if len(parts) == 4 and parts[:2] == ["v1", "tenant"] and parts[3] == "config" and method == "GET":
            record = self.records.get(parts[2])
            if record is None:
                return 404, {"msg": "NotFound: Tenant not found"}
            return 200, {"tenant_specific_overrides": record["config"], "effective_config": record["config"]}
        return 404, {"msg": f"no route {method} {path}"}

    def _debug(self, tenant: str, action: str) -> tuple[int, Any]:
        if action == "drop":
            self.records.pop(tenant, None)
            return 200, None
        if action != "import":
            return 404, {"msg": f"no route POST {action}"}
        if self.no_nodes > 0:
            self.no_nodes -= 1
            return 400, {"msg": "Bad request: No nodes available"}
        if tenant in self.fail_import:
            return 500, {"msg": "Internal Server Error: pageserver scan failed"}
        highest = self.remote_generation(tenant)
        if highest is None:
            return 404, {"msg": "NotFound: No shards found"}
        if tenant not in self.records:
            # Created at the highest generation; the attach that follows takes the next one.
            self.records[tenant] = {"generation": highest + 1, "config": {}}
        generation = self.records[tenant]["generation"]
        return 200, {"shards": [{"shard_id": f"{tenant}-0001", "node_id": 1, "generation": generation}]}
