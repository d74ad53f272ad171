"""A small fake of Qdrant's cluster REST API, answering exactly as facts/qdrant.md §2.2 shows.

It is for what local mode cannot do (GET /cluster, GET /collections/{c}/cluster). Every
answer has Qdrant's envelope: {"result": ..., "status": "ok", "time": ...}; errors are
{"status": {"error": ...}, "time": ...}.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.support.fake_http import FakeJsonServer

PEER_IDS = [11111, 22222, 33333]


class FakeQdrantCluster(FakeJsonServer):
    """State the tests steer: how many peers have joined, the leader, replica states."""

    def __init__(self, api_key: str = "test-key", peers_joined: int = 3) -> None:
        super().__init__()
        self.api_key = api_key
        self.peers_joined = peers_joined
        self.leader: int | None = PEER_IDS[0]
        self.collections: dict[str, dict[str, Any]] = {}
        self.forced_states: dict[tuple[int, int], str] = {}  # (shard, peer) -> state

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

    # -- routing ----------------------------------------------------------------------------

    @staticmethod
    def ok(result: Any) -> tuple[int, dict]:
        return 200, {"result": result, "status": "ok", "time": 0.0001}

    @staticmethod
    def error(status: int, message: str) -> tuple[int, dict]:
        return status, {"status": {"error": message}, "time": 0.0001}

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, dict]:
        if headers.get("api-key") != self.api_key:
            return self.error(401, "Must provide an API key or an Authorization bearer token")
        parts = [p for p in urlsplit(path).path.split("/") if p]
        if parts == ["cluster"] and method == "GET":
            return self.ok(self.cluster())
        if len(parts) >= 2 and parts[0] == "collections":
            name = parts[1]
            if len(parts) == 3 and parts[2] == "cluster" and method == "GET":
                if name not in self.collections:
                    return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
                return self.ok(self.collection_cluster(name))
            if len(parts) == 2:
                return self._collection(method, name, body)
        return self.error(404, f"no route {method} {path}")

    def _collection(self, method: str, name: str, body: Any) -> tuple[int, dict]:
        exists = name in self.collections
        if method == "DELETE":
            return self.ok(self.collections.pop(name, None) is not None)
        if method == "PUT":
            if exists:
                return self.error(409, f"Wrong input: Collection `{name}` already exists!")
            self.collections[name] = {
                "status": "green",
                "points_count": 0,
                "config": {
                    "params": {
                        "vectors": body["vectors"],
                        "shard_number": body.get("shard_number", self.peers_joined),
                        "replication_factor": body.get("replication_factor", 1),
                        "write_consistency_factor": body.get("write_consistency_factor", 1),
                        "on_disk_payload": True,
                    }
                },
            }
            return self.ok(True)
        if not exists:
            return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
        if method == "GET":
            return self.ok(self.collections[name])
        if method == "PATCH":
            self.collections[name]["config"]["params"].update((body or {}).get("params") or {})
            return self.ok(True)
        return self.error(405, "method not allowed")
