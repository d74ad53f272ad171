"""A fake Qdrant cluster of N nodes, each its own REST server, for the snapshot API of v1.19
(src/actix/api/snapshot_api.rs), as strict as the service where backups depend on it:

- A collection snapshot holds the shards local to the node asked (replica_set/snapshots.rs);
  its name is `{collection}-{peer_id}-{YYYY-MM-DD-HH-MM-SS}.snapshot`; it is described as
  `{name, creation_time, size, checksum}` and listed, downloaded (octet stream) and deleted on
  that node only; an unknown one is 404 "Not found: Snapshot {name} not found".
- Recover (`PUT …/snapshots/recover`, lib/storage/src/content_manager/snapshots/recover.rs and
  download.rs): `location` http(s) only (file:// needs the node's snapshots path: refused here,
  as a path outside it is); the file is downloaded (a non-2xx answer is 400 "Failed to download
  tar from {url}: status - {code}"); a `checksum` that differs is 400 "Wrong input: Snapshot
  checksum mismatch: expected X, got Y"; a collection that does not exist is created from the
  snapshot's config, one whose vectors or shard number differ is refused; then only the shards
  the snapshot has data for are restored, and with `priority: snapshot` their data wins.
- `POST …/points/count` counts every shard; `GET …/cluster` gives the node's local shards with
  their `points_count`. Every request needs the API key (`api-key` or a bearer token).

Points are placed on shard `id % shard_number`; shard s has replicas on nodes s, s+1, …
(replication factor), so with 3 nodes and factor 2 every node holds two of three shards.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tests.support.fake_http import FakeJsonServer
from tests.support.fake_qdrant import fetch_snapshot

PEER_BASE = 1000


class FakeQdrantNodes:
    def __init__(self, nodes: int = 3, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.count = nodes
        self.collections: dict[str, dict[str, Any]] = {}
        """name -> {"config": {size, shard_number, replication_factor}, "shards": {id: {pid: point}}}"""
        self.snapshots: list[dict[str, dict[str, bytes]]] = [{} for _ in range(nodes)]
        """per node: collection -> name -> bytes"""
        self.down: set[int] = set()
        self.lock = threading.RLock()
        self.nodes = [_Node(self, i) for i in range(nodes)]
        self.servers = [node.server for node in self.nodes]
        self.clock = datetime.datetime(2026, 11, 27, 3, 0, 0, tzinfo=datetime.UTC)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{s.server_address[1]}" for s in self.servers]

    def __enter__(self) -> FakeQdrantNodes:
        for node in self.nodes:
            node.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self.servers:
            if server.socket.fileno() != -1:  # not closed by a test already
                server.shutdown()
                server.server_close()

    # -- state the tests set up and read ------------------------------------------------------

    def create(self, name: str, size: int = 4, shard_number: int = 3, replication_factor: int = 2) -> None:
        config = {"size": size, "shard_number": shard_number, "replication_factor": replication_factor}
        self.collections[name] = {"config": config, "shards": {s: {} for s in range(shard_number)}}

    def upsert(self, name: str, points: dict[int, dict]) -> None:
        collection = self.collections[name]
        for pid, point in points.items():
            collection["shards"][pid % collection["config"]["shard_number"]][pid] = point

    def points(self, name: str) -> dict[int, dict]:
        return {pid: p for shard in self.collections[name]["shards"].values() for pid, p in shard.items()}

    def local_shards(self, name: str, node: int) -> list[int]:
        config = self.collections[name]["config"]
        copies = min(config["replication_factor"], self.count)
        return [s for s in range(config["shard_number"]) if (node - s) % self.count < copies]

    # -- the API ------------------------------------------------------------------------------

    def _snapshot(self, node: int, name: str) -> tuple[int, Any]:
        collection = self.collections[name]
        self.clock += datetime.timedelta(seconds=1)
        shards = {
            str(s): {str(pid): p for pid, p in collection["shards"][s].items()}
            for s in self.local_shards(name, node)
        }
        data = json.dumps({"config": collection["config"], "shards": shards}).encode()
        snapshot = f"{name}-{PEER_BASE + node}-{self.clock:%Y-%m-%d-%H-%M-%S}.snapshot"
        self.snapshots[node].setdefault(name, {})[snapshot] = data
        return 200, {
            "name": snapshot,
            "creation_time": f"{self.clock:%Y-%m-%dT%H:%M:%S}",
            "size": len(data),
            "checksum": hashlib.sha256(data).hexdigest(),
        }

    def _recover(self, node: int, name: str, body: dict) -> tuple[int, Any]:
        status, data = fetch_snapshot(body.get("location", ""), body.get("checksum"))
        if status != 200:
            return status, data
        snapshot = json.loads(data)
        with self.lock:
            if name not in self.collections:
                config = snapshot["config"]
                self.create(name, config["size"], config["shard_number"], config["replication_factor"])
            config = self.collections[name]["config"]
            if (config["size"], config["shard_number"]) != (
                snapshot["config"]["size"],
                snapshot["config"]["shard_number"],
            ):
                return 400, "Wrong input: Snapshot is not compatible with existing collection"
            for shard, points in snapshot["shards"].items():
                if body.get("priority", "snapshot") in ("snapshot", "no_sync"):
                    self.collections[name]["shards"][int(shard)] = {int(pid): p for pid, p in points.items()}
        return 200, True

    def handle(self, node: int, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if self.api_key not in (headers.get("api-key"), bearer):
            return 401, "Must provide an API key or an Authorization bearer token"
        parts = [urllib.parse.unquote(p) for p in urllib.parse.urlsplit(path).path.split("/") if p]
        if len(parts) < 2 or parts[0] != "collections":
            return 404, f"no route {method} {path}"
        name, rest = parts[1], parts[2:]
        with self.lock:
            if rest == ["snapshots", "recover"] and method == "PUT":
                return self._recover(node, name, body or {})
            if name not in self.collections:
                return 404, f"Not found: Collection `{name}` doesn't exist!"
            taken = self.snapshots[node].setdefault(name, {})
            if rest == ["snapshots"] and method == "POST":
                return self._snapshot(node, name)
            if rest == ["snapshots"] and method == "GET":
                return 200, [{"name": n, "size": len(d)} for n, d in sorted(taken.items())]
            if len(rest) == 2 and rest[0] == "snapshots":
                if rest[1] not in taken:
                    return 404, f"Not found: Snapshot {rest[1]} not found"
                if method == "GET":
                    return 200, taken[rest[1]]
                if method == "DELETE":
                    del taken[rest[1]]
                    return 200, True
            if rest == ["points", "count"] and method == "POST":
                return 200, {"count": len(self.points(name))}
            if rest == ["cluster"] and method == "GET":
                shards = self.collections[name]["shards"]
                local = [
                    {"shard_id": s, "points_count": len(shards[s]), "state": "Active"}
                    for s in self.local_shards(name, node)
                ]
                return 200, {
                    "peer_id": PEER_BASE + node,
                    "shard_count": len(shards),
                    "local_shards": local,
                    "remote_shards": [],
                }
        return 404, f"no route {method} {path}"


class _Node(FakeJsonServer):
    """One node's REST server: the cluster's answer in Qdrant's envelope, files as they are."""

    def __init__(self, cluster: FakeQdrantNodes, index: int) -> None:
        super().__init__()
        self.cluster, self.index = cluster, index

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        status, answer = self.cluster.handle(self.index, method, path, body, headers)
        if isinstance(answer, bytes):
            return status, answer
        if status // 100 == 2:
            return status, {"result": answer, "status": "ok", "time": 0.001}
        return status, {"status": {"error": answer}, "time": 0.001}
