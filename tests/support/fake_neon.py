"""A small fake of the Neon storage controller's HTTP API, following facts/neon.md §3 and §7.5
(and the controller code read for the Neon issue): 201 on create (also an identical re-create),
409 on a timeline that exists with other parameters, 429 while a create is in progress,
DELETE answered 409 while the deletion runs and 200 once it is done, GET 404 afterwards.
Errors have Neon's body shape {"msg": "..."}.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeStorageController:
    def __init__(self) -> None:
        self.tenants: dict[str, dict[str, Any]] = {}
        self.timelines: dict[tuple[str, str], dict[str, Any]] = {}
        self.busy_creates = 0  # answer 429 to this many timeline creates first
        self.unavailable = 0  # answer 503 to this many requests first
        self.delete_rounds = 2  # DELETE answers 409 this many times before 200
        self.lsn_answer = {"lsn": "0/1A2B3C0", "kind": "past"}
        self.requests: list[tuple[str, str, Any]] = []
        self._deleting: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeStorageController:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method]

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

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                url = urlsplit(self.path)
                parts = [p for p in url.path.split("/") if p]
                with fake.lock:
                    fake.requests.append((method, self.path, body))
                    if fake.unavailable > 0:
                        fake.unavailable -= 1
                        return self._send(503, {"msg": "Service Unavailable: not yet ready"})
                    return self._dispatch(method, parts, parse_qs(url.query), body)

            def _dispatch(self, method, parts, query, body):
                if parts == ["v1", "tenant"] and method == "POST":
                    tenant = body["new_tenant_id"]
                    fake.tenants.setdefault(tenant, {k: v for k, v in body.items() if k != "new_tenant_id"})
                    return self._send(
                        201, {"shards": [{"shard_id": f"{tenant}-0000", "node_id": 1, "generation": 1}]}
                    )
                if parts == ["v1", "tenant", "config"] and method == "PUT":
                    if body["tenant_id"] not in fake.tenants:
                        return self._send(404, {"msg": "NotFound: tenant not found"})
                    fake.tenants[body["tenant_id"]].update(
                        {k: v for k, v in body.items() if k != "tenant_id"}
                    )
                    return self._send(200, None)
                if len(parts) < 3 or parts[:2] != ["v1", "tenant"]:
                    return self._send(404, {"msg": f"no route {method} {self.path}"})
                tenant = parts[2]
                if len(parts) == 3:
                    if tenant not in fake.tenants:
                        return self._send(404, {"msg": f"NotFound: tenant {tenant}"})
                    if method == "DELETE":
                        del fake.tenants[tenant]
                        return self._send(200, None)
                    return self._send(200, {"id": tenant, **fake.tenants[tenant]})
                if tenant not in fake.tenants:
                    return self._send(404, {"msg": f"NotFound: tenant {tenant}"})
                if parts[3:] == ["timeline"] and method == "POST":
                    return self._create_timeline(tenant, body)
                timeline = parts[4] if len(parts) > 4 else None
                key = (tenant, timeline)
                if parts[5:] == ["get_lsn_by_timestamp"]:
                    if key not in fake.timelines:
                        return self._send(404, {"msg": "NotFound: timeline"})
                    fake.last_timestamp = query.get("timestamp", [None])[0]
                    return self._send(200, fake.lsn_answer)
                if len(parts) == 5 and method == "GET":
                    if key not in fake.timelines:
                        return self._send(404, {"msg": f"NotFound: timeline {timeline}"})
                    info = {k: v for k, v in fake.timelines[key].items() if k != "_request"}
                    return self._send(200, info)
                if len(parts) == 5 and method == "DELETE":
                    if key not in fake.timelines:
                        return self._send(200, None)  # the controller maps a pageserver 404 to 200
                    children = [t for t in fake.timelines.values() if t["ancestor_timeline_id"] == timeline]
                    if children:
                        return self._send(412, {"msg": "PreconditionFailed: timeline has child timelines"})
                    rounds = fake._deleting.get(key, fake.delete_rounds)
                    if rounds > 0:
                        fake._deleting[key] = rounds - 1
                        return self._send(409, {"msg": "Conflict: deletion in progress"})
                    del fake.timelines[key]
                    fake._deleting.pop(key, None)
                    return self._send(200, None)
                return self._send(404, {"msg": f"no route {method} {self.path}"})

            def _create_timeline(self, tenant, body):
                if fake.busy_creates > 0:
                    fake.busy_creates -= 1
                    return self._send(429, {"msg": "TooManyRequests: creation in progress"})
                key = (tenant, body["new_timeline_id"])
                if key in fake.timelines:
                    if fake.timelines[key]["_request"] == body:
                        info = {k: v for k, v in fake.timelines[key].items() if k != "_request"}
                        return self._send(201, info)
                    return self._send(
                        409, {"msg": "Conflict: timeline already exists with different parameters"}
                    )
                ancestor = body.get("ancestor_timeline_id")
                if ancestor and (tenant, ancestor) not in fake.timelines:
                    return self._send(
                        500, {"msg": "Cannot branch off the timeline that's not present in pageserver"}
                    )
                fake.timelines[key] = fake._timeline_info(tenant, body)
                info = {k: v for k, v in fake.timelines[key].items() if k != "_request"}
                return self._send(201, info)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler
