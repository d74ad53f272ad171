"""A small fake of Qdrant's cluster REST API, answering exactly as facts/qdrant.md §2.2 shows.

It is for what local mode cannot do (GET /cluster, GET /collections/{c}/cluster). Every
answer has Qdrant's envelope: {"result": ..., "status": "ok", "time": ...}; errors are
{"status": {"error": ...}, "time": ...}.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PEER_IDS = [11111, 22222, 33333]


class FakeQdrantCluster:
    """State the tests steer: how many peers have joined, the leader, replica states."""

    def __init__(self, api_key: str = "test-key", peers_joined: int = 3) -> None:
        self.api_key = api_key
        self.peers_joined = peers_joined
        self.leader: int | None = PEER_IDS[0]
        self.collections: dict[str, dict[str, Any]] = {}
        self.forced_states: dict[tuple[int, int], str] = {}  # (shard, peer) -> state
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeQdrantCluster:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    # -- answers --------------------------------------------------------------------------

    def cluster(self) -> dict:
        peers = {
            str(pid): {"uri": f"http://qdrant-{i}:6335/"}
            for i, pid in enumerate(PEER_IDS[: self.peers_joined])
        }
        return {
            "status": "enabled",
            "peer_id": PEER_IDS[0],
            "peers": peers,
            "raft_info": {
                "term": 2,
                "commit": 17,
                "pending_operations": 0,
                "leader": self.leader,
                "role": "Leader" if self.leader == PEER_IDS[0] else "Follower",
                "is_voter": True,
            },
            "consensus_thread_status": {
                "consensus_thread_status": "working",
                "last_update": "2026-11-26T10:00:00Z",
            },
            "message_send_failures": {},
        }

    def collection_cluster(self, name: str) -> dict:
        params = self.collections[name]["config"]["params"]
        peers = PEER_IDS[: self.peers_joined]
        local, remote = [], []
        for shard in range(params["shard_number"]):
            for r in range(min(params["replication_factor"], len(peers))):
                peer = peers[(shard + r) % len(peers)]
                state = self.forced_states.get((shard, peer), "Active")
                if peer == PEER_IDS[0]:
                    local.append({"shard_id": shard, "points_count": 0, "state": state})
                else:
                    remote.append({"shard_id": shard, "peer_id": peer, "state": state})
        return {
            "peer_id": PEER_IDS[0],
            "shard_count": params["shard_number"],
            "local_shards": local,
            "remote_shards": remote,
            "shard_transfers": [],
        }

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, result: Any = None, error: str | None = None) -> None:
                body = {"time": 0.0001}
                if error is None:
                    body.update(result=result, status="ok")
                else:
                    body["status"] = {"error": error}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.lock:
                    fake.requests.append((method, self.path, body))
                    if self.headers.get("api-key") != fake.api_key:
                        return self._send(
                            401, error="Must provide an API key or an Authorization bearer token"
                        )
                    parts = [p for p in self.path.split("?")[0].split("/") if p]
                    if parts == ["cluster"] and method == "GET":
                        return self._send(200, fake.cluster())
                    if len(parts) >= 2 and parts[0] == "collections":
                        name = parts[1]
                        exists = name in fake.collections
                        if len(parts) == 3 and parts[2] == "cluster" and method == "GET":
                            if not exists:
                                return self._send(404, error=f"Not found: Collection `{name}` doesn't exist!")
                            return self._send(200, fake.collection_cluster(name))
                        if len(parts) == 2:
                            return self._collection(method, name, exists, body)
                    return self._send(404, error=f"no route {method} {self.path}")

            def _collection(self, method: str, name: str, exists: bool, body: Any) -> None:
                if method == "GET":
                    if not exists:
                        return self._send(404, error=f"Not found: Collection `{name}` doesn't exist!")
                    return self._send(200, fake.collections[name])
                if method == "PUT":
                    if exists:
                        return self._send(409, error=f"Wrong input: Collection `{name}` already exists!")
                    fake.collections[name] = {
                        "status": "green",
                        "points_count": 0,
                        "config": {
                            "params": {
                                "vectors": body["vectors"],
                                "shard_number": body.get("shard_number", fake.peers_joined),
                                "replication_factor": body.get("replication_factor", 1),
                                "write_consistency_factor": body.get("write_consistency_factor", 1),
                                "on_disk_payload": True,
                            }
                        },
                    }
                    return self._send(200, True)
                if method == "PATCH":
                    if not exists:
                        return self._send(404, error=f"Not found: Collection `{name}` doesn't exist!")
                    fake.collections[name]["config"]["params"].update((body or {}).get("params") or {})
                    return self._send(200, True)
                if method == "DELETE":
                    return self._send(200, fake.collections.pop(name, None) is not None)
                return self._send(405, error="method not allowed")

            def do_GET(self) -> None:
                self._route("GET")

            def do_PUT(self) -> None:
                self._route("PUT")

            def do_PATCH(self) -> None:
                self._route("PATCH")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler
