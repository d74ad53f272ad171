"""A fake of the Neon storage controller's HTTP API in front of one pageserver, as strict as
the pinned release (storage `release-9129`). Error bodies are Neon's `{"msg": "..."}`.

What the controller does with the pageserver's answers (`storage_controller/src/service.rs`
`passthrough_api_error`): a pageserver 404 becomes 404 "NotFound: {node}: {msg}", a 503 stays
503, and every other error status (429, 406, 409, 412, 500) becomes **409**
"Conflict: {node} {status}: {status} {msg}". Plain GETs under /v1/tenant/{id}/ are proxied
raw (`http.rs` handle_tenant_timeline_passthrough).

The pageserver's own answers (`pageserver/src/http/routes.rs`, `tenant.rs` CreateTimelineError):
- timeline create: 201 (also for an identical re-create), 429 while a create of that id is
  in progress, 409 for an existing id with other parameters, 406 for a start LSN below the
  ancestor's GC cutoff (`min_readable_lsn`) or past its `last_record_lsn`; a branch's
  `pg_version` is ignored (it inherits the ancestor's).
- timeline delete with children: 412 "Cannot delete timeline which has child timelines", which
  the controller's delete turns into **500** "Error deleting timeline …" (`tenant_timeline_delete`);
  a deletion still running is 409, a finished one 200, a missing timeline 200 too.
- `get_lsn_by_timestamp` (`pgdatadir_mapping.rs` find_lsn_for_timestamp): the timestamp must be
  RFC 3339 UTC with a `Z` (else 400 "Invalid time"); `present` with the last commit at or before
  it, `past` with the oldest readable LSN when it is older than what is retained, `future` with
  the last record LSN when it is after the last commit, `nodata` without any commit.
- `last_record_lsn` moves on as the timeline takes writes.
- tenant create right after the pageserver registered: 409 "Conflict: Failed to schedule
  shard(s): …" until a heartbeat marks the node Active (`do_tenant_create`).
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_http import FakeJsonServer, PlainText
from tests.support.fake_metrics import EXPOSITIONS

NODE = "1 (pageserver)"
REASONS = {406: "Not Acceptable", 409: "Conflict", 412: "Precondition Failed", 429: "Too Many Requests",
           500: "Internal Server Error"}  # fmt: skip
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def lsn_int(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def passthrough(status: int, msg: str) -> tuple[int, dict]:
    """How the controller passes a pageserver error on to its client."""
    if status == 404:
        return 404, {"msg": f"NotFound: {NODE}: {msg}"}
    if status == 503:
        return 503, {"msg": f"{NODE}: {msg}"}
    reason = REASONS.get(status, "Error")
    return 409, {"msg": f"Conflict: {NODE} {status} {reason}: {status} {reason} {msg}"}


class FakeStorageController(FakeJsonServer):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: dict[str, dict[str, Any]] = {}
        self.timelines: dict[tuple[str, str], dict[str, Any]] = {}
        self.busy_creates = 0  # the pageserver answers 429 (create in progress) this many times
        self.unschedulable = 0  # tenant creates answered "Failed to schedule" until the heartbeat
        self.unavailable = 0  # answer 503 to this many requests first
        self.delete_rounds = 2  # DELETE answers 409 this many times before 200
        self.commits: list[tuple[datetime, str]] = [
            (datetime(2026, 11, 1, 10, tzinfo=UTC), "0/1800000"),
            (datetime(2026, 11, 1, 11, tzinfo=UTC), "0/1A2B3C0"),
            (datetime(2026, 11, 1, 12, tzinfo=UTC), "0/1F00000"),
        ]
        """Commit times and LSNs of every timeline, oldest first (for get_lsn_by_timestamp)."""
        self.min_readable_lsn = "0/1000000"
        self.gc_cutoff_time = datetime(2026, 11, 1, 9, tzinfo=UTC)
        """Commits before this are no longer retained (pitr_interval)."""
        self._deleting: dict[tuple[str, str], int] = {}
        self.last_timestamp: str | None = None
        self.state = threading.RLock()

    def _timeline_info(self, tenant: str, body: dict) -> dict:
        ancestor = body.get("ancestor_timeline_id")
        pg_version = (
            self.timelines[(tenant, ancestor)]["pg_version"] if ancestor else body.get("pg_version", 17)
        )
        return {
            "tenant_id": tenant,
            "timeline_id": body["new_timeline_id"],
            "ancestor_timeline_id": ancestor,
            "ancestor_lsn": body.get("ancestor_start_lsn") if ancestor else None,
            "last_record_lsn": "0/2000000",
            "disk_consistent_lsn": "0/2000000",
            "min_readable_lsn": self.min_readable_lsn,
            "state": "Active",
            "pg_version": pg_version,
            "safekeepers": None,
            "_request": body,
        }

    def write(self, tenant: str, timeline: str, bytes_: int = 0x100) -> None:
        """The compute wrote WAL: the timeline's last_record_lsn moves on."""
        info = self.timelines[(tenant, timeline)]
        info["last_record_lsn"] = lsn_text(lsn_int(info["last_record_lsn"]) + bytes_)

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        url = urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        if method == "GET" and parts == ["metrics"]:
            # Open without a token, and served before the controller is ready (http.rs).
            return 200, PlainText(EXPOSITIONS["neon-storage-controller"])
        with self.state:
            if self.unavailable > 0:
                self.unavailable -= 1
                return 503, {"msg": "Service Unavailable: not yet ready"}
            return self._dispatch(method, path, parts, parse_qs(url.query), body)

    def _dispatch(self, method: str, path: str, parts: list[str], query: dict, body: Any) -> tuple[int, Any]:
        if parts == ["v1", "tenant"] and method == "POST":
            if self.unschedulable > 0:
                self.unschedulable -= 1
                return 409, {
                    "msg": "Conflict: Failed to schedule shard(s): No pageserver found matching constraint"
                }
            tenant = body["new_tenant_id"]
            self.tenants.setdefault(tenant, {k: v for k, v in body.items() if k != "new_tenant_id"})
            return 201, {"shards": [{"shard_id": f"{tenant}-0000", "node_id": 1, "generation": 1}]}
        if parts == ["v1", "tenant", "config"] and method == "PUT":
            if body["tenant_id"] not in self.tenants:
                return 404, {"msg": "NotFound: tenant not found"}
            self.tenants[body["tenant_id"]].update({k: v for k, v in body.items() if k != "tenant_id"})
            return 200, None
        if len(parts) < 3 or parts[:2] != ["v1", "tenant"]:
            return 404, {"msg": f"no route {method} {path}"}
        tenant = parts[2]
        if len(parts) == 3:
            if tenant not in self.tenants:
                return 404, {"msg": f"NotFound: tenant {tenant}"}
            if method == "DELETE":
                del self.tenants[tenant]
                return 200, None
            return 200, {"id": tenant, **self.tenants[tenant]}
        if tenant not in self.tenants:
            return 404, {"msg": f"NotFound: tenant {tenant}"}
        if parts[3:] == ["timeline"] and method == "POST":
            return self._create_timeline(tenant, body)
        if parts[3:] == ["timeline"] and method == "GET":
            # Passed through to the pageserver (timeline_list_handler): every TimelineInfo.
            return 200, [
                {k: v for k, v in info.items() if k != "_request"}
                for (owner, _), info in self.timelines.items()
                if owner == tenant
            ]
        if parts[3:] == ["config"] and method == "GET":
            # storage_controller/src/service.rs tenant_config_get: the controller has no global
            # defaults, so both halves are the tenant's own config.
            config = {k: v for k, v in self.tenants[tenant].items() if k != "id"}
            return 200, {"tenant_specific_overrides": config, "effective_config": config}
        timeline = parts[4] if len(parts) > 4 else None
        key = (tenant, timeline)
        if parts[5:] == ["get_lsn_by_timestamp"]:
            if key not in self.timelines:
                return 404, {"msg": "NotFound: timeline"}
            return self._lsn_by_timestamp(key, query.get("timestamp", [""])[0])
        if parts[5:] == ["get_timestamp_of_lsn"]:
            lsn = query.get("lsn", [""])[0]
            at = [when for when, commit in self.commits if commit == lsn]
            if not at:
                return 412, {"msg": f"Precondition failed: Timestamp for lsn {lsn} not found"}
            return 200, at[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if len(parts) == 5 and method == "GET":
            if key not in self.timelines:
                return 404, {"msg": f"NotFound: timeline {timeline}"}
            return 200, {k: v for k, v in self.timelines[key].items() if k != "_request"}
        if len(parts) == 5 and method == "DELETE":
            return self._delete_timeline(key)
        return 404, {"msg": f"no route {method} {path}"}

    def _lsn_by_timestamp(self, key: tuple[str, str], timestamp: str) -> tuple[int, Any]:
        if not RFC3339_UTC.fullmatch(timestamp):
            return 400, {"msg": f'Bad request: Invalid time: "{timestamp}"'}
        self.last_timestamp = timestamp
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        retained = [(t, lsn) for t, lsn in self.commits if t >= self.gc_cutoff_time]
        oldest = self.timelines[key]["min_readable_lsn"]
        if not self.commits:
            return 200, {"lsn": oldest, "kind": "nodata"}
        if not retained or when < retained[0][0]:
            return 200, {"lsn": oldest, "kind": "past"}
        if when > retained[-1][0]:
            return 200, {"lsn": self.timelines[key]["last_record_lsn"], "kind": "future"}
        return 200, {"lsn": [lsn for t, lsn in retained if t <= when][-1], "kind": "present"}

    def _delete_timeline(self, key: tuple[str, str]) -> tuple[int, Any]:
        if key not in self.timelines:
            return 200, None  # the controller maps a pageserver 404 to 200
        children = [t["timeline_id"] for t in self.timelines.values() if t["ancestor_timeline_id"] == key[1]]
        if children:
            return 500, {
                "msg": f"Error deleting timeline {key[1]} on {key[0]} on node {NODE}: pageserver API: "
                f"Precondition failed: Cannot delete timeline which has child timelines: {children}"
            }
        rounds = self._deleting.get(key, self.delete_rounds)
        if rounds > 0:
            self._deleting[key] = rounds - 1
            return 409, None
        del self.timelines[key]
        self._deleting.pop(key, None)
        return 200, None

    def _create_timeline(self, tenant: str, body: dict) -> tuple[int, Any]:
        if self.busy_creates > 0:
            self.busy_creates -= 1
            return passthrough(429, "creation of timeline with the given ID is in progress")
        key = (tenant, body["new_timeline_id"])
        if key in self.timelines:
            if self.timelines[key]["_request"] == body:
                return 201, {k: v for k, v in self.timelines[key].items() if k != "_request"}
            return passthrough(409, "timeline already exists with different parameters")
        ancestor = body.get("ancestor_timeline_id")
        if ancestor:
            parent = self.timelines.get((tenant, ancestor))
            if parent is None:
                return passthrough(500, "Cannot branch off the timeline that's not present in pageserver")
            start = body.get("ancestor_start_lsn") or parent["last_record_lsn"]
            if lsn_int(start) < lsn_int(parent["min_readable_lsn"]):
                return passthrough(
                    406,
                    f"invalid branch start lsn: less than latest GC cutoff {parent['min_readable_lsn']}: "
                    f"LSN {start} is earlier than latest GC cutoff {parent['min_readable_lsn']}",
                )
            if lsn_int(start) > lsn_int(parent["last_record_lsn"]):
                return passthrough(406, f"invalid start lsn {start} for ancestor timeline {ancestor}")
        self.timelines[key] = self._timeline_info(tenant, body)
        return 201, {k: v for k, v in self.timelines[key].items() if k != "_request"}


def format_lsn(lsn: int) -> str:
    """An LSN as the safekeeper's API prints it (utils::lsn::Lsn Display: `{:X}/{:X}`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


class FakeSafekeeper(FakeJsonServer):
    """One safekeeper's HTTP API (safekeeper/src/http/routes.rs):

    - `GET /v1/status`: `{"id": <node id>}` (status_handler);
    - `GET /v1/tenant/{t}/timeline/{tl}`: the timeline's `flush_lsn` and `commit_lsn` among its
      status fields, LSNs printed `X/X`; 404 when the safekeeper does not hold it
      (timeline_status_handler, GlobalTimelines::get -> NotFound);
    - `DELETE` of a timeline: 200 `{"dir_existed": ...}`, whether it had the timeline or not
      (timeline_delete_handler).
    """

    def __init__(self, node_id: int = 1) -> None:
        super().__init__()
        self.node_id = node_id
        self.timelines: set[tuple[str, str]] = set()
        self.lsns: dict[tuple[str, str], tuple[int, int]] = {}
        """(tenant, timeline) -> (flush LSN, commit LSN) of a held timeline; 0/0 when unset."""

    def hold(self, tenant: str, timeline: str, flush: int, commit: int) -> None:
        """The safekeeper holds the timeline, flushed and committed up to these LSNs."""
        with self.lock:
            self.timelines.add((tenant, timeline))
            self.lsns[(tenant, timeline)] = (flush, commit)

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        parts = [p for p in urlsplit(path).path.split("/") if p]
        if method == "GET" and parts == ["v1", "status"]:
            return 200, {"id": self.node_id}
        if method == "GET" and parts == ["metrics"]:
            return 200, PlainText(EXPOSITIONS["neon-safekeeper"])
        timeline = len(parts) == 5 and parts[:2] == ["v1", "tenant"] and parts[3] == "timeline"
        if method == "GET" and timeline:
            key = (parts[2], parts[4])
            with self.lock:
                if key not in self.timelines:
                    return 404, {"msg": f"NotFound: Timeline {key[0]}/{key[1]} was not found in global map"}
                flush, commit = self.lsns.get(key, (0, 0))
            return 200, {
                "tenant_id": key[0],
                "timeline_id": key[1],
                "flush_lsn": format_lsn(flush),
                "commit_lsn": format_lsn(commit),
                "backup_lsn": "0/0",
                "peer_horizon_lsn": format_lsn(commit),
            }
        if method == "DELETE" and timeline:
            key = (parts[2], parts[4])
            with self.lock:
                existed = key in self.timelines
                self.timelines.discard(key)
                self.lsns.pop(key, None)
            return 200, {"dir_existed": existed}
        return 404, {"msg": f"no route {method} {path}"}
