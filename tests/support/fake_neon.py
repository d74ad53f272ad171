"""A small fake of the Neon storage controller's HTTP API, following facts/neon.md §3 and §7.5
(and the controller code read for the Neon issue): 201 on create (also an identical re-create),
409 on a timeline that exists with other parameters, 429 while a create is in progress,
DELETE answered 409 while the deletion runs and 200 once it is done, GET 404 afterwards.
Errors have Neon's body shape {"msg": "..."}.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_http import FakeJsonServer


class FakeStorageController(FakeJsonServer):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: dict[str, dict[str, Any]] = {}
        self.timelines: dict[tuple[str, str], dict[str, Any]] = {}
        self.busy_creates = 0  # answer 429 to this many timeline creates first
        self.unavailable = 0  # answer 503 to this many requests first
        self.delete_rounds = 2  # DELETE answers 409 this many times before 200
        self.lsn_answer = {"lsn": "0/1A2B3C0", "kind": "past"}
        self._deleting: dict[tuple[str, str], int] = {}
        self.last_timestamp: str | None = None
        self.state = threading.RLock()

    def _timeline_info(self, tenant: str, body: dict) -> dict:
        ancestor = body.get("ancestor_timeline_id")
        return {
            "tenant_id": tenant,
            "timeline_id": body["new_timeline_id"],
            "ancestor_timeline_id": ancestor,
            "ancestor_lsn": body.get("ancestor_start_lsn") if ancestor else None,
            "last_record_lsn": "0/2000000",
            "disk_consistent_lsn": "0/2000000",
            "min_readable_lsn": "0/1000000",
            "state": "Active",
            "pg_version": body.get("pg_version", 17),
            "safekeepers": None,
            "_request": body,
        }

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        url = urlsplit(path)
        parts = [p for p in url.path.split("/") if p]
        with self.state:
            if self.unavailable > 0:
                self.unavailable -= 1
                return send(503, {"msg": "Service Unavailable: not yet ready"})
            return self._dispatch(method, path, parts, parse_qs(url.query), body)

    def _dispatch(self, method: str, path: str, parts: list[str], query: dict, body: Any) -> tuple[int, Any]:
        if parts == ["v1", "tenant"] and method == "POST":
            tenant = body["new_tenant_id"]
            self.tenants.setdefault(tenant, {k: v for k, v in body.items() if k != "new_tenant_id"})
            return send(201, {"shards": [{"shard_id": f"{tenant}-0000", "node_id": 1, "generation": 1}]})
        if parts == ["v1", "tenant", "config"] and method == "PUT":
            if body["tenant_id"] not in self.tenants:
                return send(404, {"msg": "NotFound: tenant not found"})
            self.tenants[body["tenant_id"]].update({k: v for k, v in body.items() if k != "tenant_id"})
            return send(200, None)
        if len(parts) < 3 or parts[:2] != ["v1", "tenant"]:
            return send(404, {"msg": f"no route {method} {path}"})
        tenant = parts[2]
        if len(parts) == 3:
            if tenant not in self.tenants:
                return send(404, {"msg": f"NotFound: tenant {tenant}"})
            if method == "DELETE":
                del self.tenants[tenant]
                return send(200, None)
            return send(200, {"id": tenant, **self.tenants[tenant]})
        if tenant not in self.tenants:
            return send(404, {"msg": f"NotFound: tenant {tenant}"})
        if parts[3:] == ["timeline"] and method == "POST":
            return self._create_timeline(tenant, body)
        timeline = parts[4] if len(parts) > 4 else None
        key = (tenant, timeline)
        if parts[5:] == ["get_lsn_by_timestamp"]:
            if key not in self.timelines:
                return send(404, {"msg": "NotFound: timeline"})
            self.last_timestamp = query.get("timestamp", [None])[0]
            return send(200, self.lsn_answer)
        if len(parts) == 5 and method == "GET":
            if key not in self.timelines:
                return send(404, {"msg": f"NotFound: timeline {timeline}"})
            info = {k: v for k, v in self.timelines[key].items() if k != "_request"}
            return send(200, info)
        if len(parts) == 5 and method == "DELETE":
            if key not in self.timelines:
                return send(200, None)  # the controller maps a pageserver 404 to 200
            children = [t for t in self.timelines.values() if t["ancestor_timeline_id"] == timeline]
            if children:
                return send(412, {"msg": "PreconditionFailed: timeline has child timelines"})
            rounds = self._deleting.get(key, self.delete_rounds)
            if rounds > 0:
                self._deleting[key] = rounds - 1
                return send(409, {"msg": "Conflict: deletion in progress"})
            del self.timelines[key]
            self._deleting.pop(key, None)
            return send(200, None)
        return send(404, {"msg": f"no route {method} {path}"})

    def _create_timeline(self, tenant, body):
        if self.busy_creates > 0:
            self.busy_creates -= 1
            return send(429, {"msg": "TooManyRequests: creation in progress"})
        key = (tenant, body["new_timeline_id"])
        if key in self.timelines:
            if self.timelines[key]["_request"] == body:
                info = {k: v for k, v in self.timelines[key].items() if k != "_request"}
                return send(201, info)
            return send(409, {"msg": "Conflict: timeline already exists with different parameters"})
        ancestor = body.get("ancestor_timeline_id")
        if ancestor and (tenant, ancestor) not in self.timelines:
            return send(500, {"msg": "Cannot branch off the timeline that's not present in pageserver"})
        self.timelines[key] = self._timeline_info(tenant, body)
        info = {k: v for k, v in self.timelines[key].items() if k != "_request"}
        return send(201, info)


def send(status: int, body: Any) -> tuple[int, Any]:
    return status, body
