"""A fake of Qdrant's cluster REST API (v1.19), as strict as the service where the provider
depends on it. Every rule is read from qdrant/qdrant at v1.19.0; the file is named beside it.

- Envelope: `{"result": ..., "status": "ok", "time": ...}`; errors `{"status": {"error": ...}}`
  (`lib/api/src/rest/models.rs` ApiResponse).
- Create (`lib/storage/src/content_manager/collection_meta_ops.rs` CreateCollection): unknown
  body fields are ignored (no `deny_unknown_fields`); `vectors.size` outside 1..=65536 and a
  factor below 1 are 422 "Validation error in JSON body: [...]"; size 0 or an unknown distance
  fail deserialization: 400 "Format error in JSON body: ..." (`src/actix/mod.rs`). An existing
  name is 409 "Wrong input: Collection `x` already exists!" (`collections_ops.rs`).
- Placement (`toc/mod.rs` suggest_shard_distribution, `shard_distribution.rs`): over every
  peer known *at creation*, alive or not, at most one replica of a shard per peer; a replica on
  a dead peer stays `Initializing` (`replica_set/mod.rs` init_replica_state), and one on a peer
  that dies later turns `Dead`.
- PATCH (`config_diff.rs` CollectionParamsDiff): only the factors and a few flags change;
  vector size, distance and shard_number cannot, and are ignored like any unknown key. A new
  replication factor rewrites the config only: no replica is added (`collection_ops.rs`).
- `GET /cluster` (`lib/storage/src/types.rs`): every known peer (liveness not considered), the
  answering node's `peer_id`, `raft_info.leader` (null without one), and
  `consensus_thread_status` tagged `working` | `stopped` | `stopped_with_err` (with `err`).
- Through the LB each request may land on another node: `peer_id`, `local_shards` and
  `remote_shards` are those of the node that answers, rotating over the live peers.
"""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from tests.support.fake_http import FakeJsonServer, PlainText
from tests.support.fake_metrics import qdrant_exposition

PEER_IDS = [11111, 22222, 33333]
DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
# CollectionParamsDiff: what PATCH /collections/{name} {"params": {...}} can change.
PATCHABLE_PARAMS = (
    "replication_factor",
    "write_consistency_factor",
    "read_fan_out_factor",
    "read_fan_out_delay_ms",
    "on_disk_payload",
)


class FakeQdrantCluster(FakeJsonServer):
    """State the tests steer: joined and dead peers, the leader, consensus, replica states."""

    def __init__(self, api_key: str = "test-key", peers_joined: int = 3) -> None:
        super().__init__()
        self.api_key = api_key
        self.peers_joined = peers_joined
        self.join_on_poll = False
        """Late joiners: each GET /cluster lets one more peer join, until all have."""
        self.leader: int | None = PEER_IDS[0]
        self.consensus = "working"  # working | stopped | stopped_with_err
        self.dead_peers: set[int] = set()
        self.collections: dict[str, dict[str, Any]] = {}
        self.placements: dict[str, dict[int, dict[int, str]]] = {}  # name -> shard -> peer -> state
        self.forced_states: dict[tuple[int, int], str] = {}  # (shard, peer) -> state
        self.lost_shards: set[int] = set()  # shards no node reports (every replica gone)
        self.peers_at_create: dict[str, int] = {}
        self.points: dict[str, dict[Any, dict]] = {}
        self.snapshots: dict[str, dict[str, bytes]] = {}  # collection -> snapshot name -> file
        self._snapshot_ids = itertools.count()
        self.state = threading.RLock()
        self._answering = itertools.count()

    # -- the cluster as one node sees it ------------------------------------------------------

    def _peers(self) -> list[int]:
        return PEER_IDS[: self.peers_joined]

    def _answering_peer(self) -> int:
        live = [p for p in self._peers() if p not in self.dead_peers] or [PEER_IDS[0]]
        return live[next(self._answering) % len(live)]

    def cluster(self) -> dict:
        if self.join_on_poll and self.peers_joined < len(PEER_IDS):
            self.peers_joined += 1
        thread: dict[str, Any] = {"consensus_thread_status": self.consensus}
        if self.consensus == "working":
            thread["last_update"] = "2026-11-26T10:00:00Z"
        elif self.consensus == "stopped_with_err":
            thread["err"] = "Consensus stopped: raft storage error"
        answering = self._answering_peer()
        return {
            "status": "enabled",
            "peer_id": answering,
            "peers": {str(pid): {"uri": f"http://qdrant-{i}:6335/"} for i, pid in enumerate(self._peers())},
            "raft_info": {
                "term": 2,
                "commit": 17,
                "pending_operations": 0,
                "leader": self.leader,
                "role": "Leader" if self.leader == answering else "Follower",
                "is_voter": True,
            },
            "consensus_thread_status": thread,
            "message_send_failures": {
                f"http://qdrant-{PEER_IDS.index(p)}:6335/": {"count": 3, "latest_error": "connection refused"}
                for p in self.dead_peers
            },
        }

    def collection_cluster(self, name: str) -> dict:
        placement = self.placements[name]
        answering = self._answering_peer()
        local, remote = [], []
        for shard, replicas in sorted(placement.items()):
            if shard in self.lost_shards:
                continue
            for peer, created_state in sorted(replicas.items()):
                state = self.forced_states.get((shard, peer), created_state)
                if peer in self.dead_peers and state == "Active":
                    state = "Dead"
                if peer == answering:
                    local.append({"shard_id": shard, "points_count": 0, "state": state})
                else:
                    remote.append({"shard_id": shard, "peer_id": peer, "state": state})
        return {
            "peer_id": answering,
            "shard_count": len(placement),
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
        # src/actix/auth.rs: the key in `api-key` or as `Authorization: Bearer <key>`.
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if self.api_key not in (headers.get("api-key"), bearer):
            return self.error(401, "Must provide an API key or an Authorization bearer token")
        parts = [p for p in urlsplit(path).path.split("/") if p]
        with self.state:
            if parts == ["metrics"] and method == "GET":
                live = len([p for p in self._peers() if p not in self.dead_peers])
                return 200, PlainText(qdrant_exposition(live, {n: len(p) for n, p in self.points.items()}))
            if parts == ["cluster"] and method == "GET":
                return self.ok(self.cluster())
            if parts == ["collections"] and method == "GET":
                # src/actix/api/collections_api.rs get_collections: CollectionsResponse.
                return self.ok({"collections": [{"name": name} for name in sorted(self.collections)]})
            if len(parts) >= 2 and parts[0] == "collections":
                name = parts[1]
                if len(parts) == 3 and parts[2] == "cluster" and method == "GET":
                    if name not in self.collections:
                        return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
                    return self.ok(self.collection_cluster(name))
                if len(parts) == 2:
                    return self._collection(method, name, body)
                if parts[2] == "snapshots":
                    return self._snapshots(method, name, parts[3:], body or {})
                if parts[2:] == ["points", "count"] and method == "POST":
                    if name not in self.collections:
                        return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
                    return self.ok({"count": len(self.points[name])})
                if parts[2:] == ["points", "search"] and method == "POST":
                    return self._search(name, body or {})
                if parts[2:] == ["points"] and method == "PUT":
                    return self._upsert(name, body or {})
                if parts[2:] == ["points", "delete"] and method == "POST":
                    return self._delete_points(name, body or {})
        return self.error(404, f"no route {method} {path}")

    def _snapshots(self, method: str, name: str, rest: list[str], body: dict) -> tuple[int, Any]:
        """The collection snapshot API (src/actix/api/snapshot_api.rs), one store for the whole
        fake cluster: a snapshot holds every point (the fake keeps no shards apart), so any node's
        snapshot restores the collection. Recover downloads `location` (`fetch_snapshot`), creates
        a missing collection from the snapshot's config, then its points win."""
        if rest == ["recover"] and method == "PUT":
            status, data = fetch_snapshot(body.get("location", ""), body.get("checksum"))
            if status != 200:
                return self.error(status, data)
            snapshot = json.loads(data)
            if name not in self.collections:
                status, answer = self._create(name, snapshot["params"])
                if status != 200:
                    return status, answer
            self.points[name] = {pid: point for pid, point in snapshot["points"]}
            self.collections[name]["points_count"] = len(self.points[name])
            return self.ok(True)
        if name not in self.collections:
            return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
        taken = self.snapshots.setdefault(name, {})
        if not rest and method == "POST":
            params = self.collections[name]["config"]["params"]
            data = json.dumps({"params": params, "points": list(self.points[name].items())}).encode()
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d-%H-%M-%S")
            snapshot = f"{name}-{self._answering_peer()}-{stamp}-{next(self._snapshot_ids)}.snapshot"
            taken[snapshot] = data
            return self.ok({"name": snapshot, "creation_time": None, "size": len(data),
                            "checksum": hashlib.sha256(data).hexdigest()})  # fmt: skip
        if not rest and method == "GET":
            return self.ok([{"name": n, "size": len(d)} for n, d in sorted(taken.items())])
        if len(rest) == 1 and rest[0] not in taken:
            return self.error(404, f"Not found: Snapshot {rest[0]} not found")
        if len(rest) == 1 and method == "GET":
            return 200, taken[rest[0]]
        if len(rest) == 1 and method == "DELETE":
            del taken[rest[0]]
            return self.ok(True)
        return self.error(404, f"no route {method} snapshots/{'/'.join(rest)}")

    def _collection(self, method: str, name: str, body: Any) -> tuple[int, dict]:
        exists = name in self.collections
        if method == "DELETE":
            self.placements.pop(name, None)
            return self.ok(self.collections.pop(name, None) is not None)
        if method == "PUT":
            return self._create(name, body or {})
        if not exists:
            return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
        if method == "GET":
            return self.ok(self.collections[name])
        if method == "PATCH":
            params = (body or {}).get("params") or {}
            for key, value in params.items():
                if key in PATCHABLE_PARAMS[:2] and (not isinstance(value, int) or value < 1):
                    return self.error(
                        400, f"Format error in JSON body: params.{key}: invalid value {value!r}"
                    )
            changed = {k: v for k, v in params.items() if k in PATCHABLE_PARAMS}
            self.collections[name]["config"]["params"].update(changed)
            return self.ok(True)
        return self.error(405, "method not allowed")

    def _search(self, name: str, body: dict) -> tuple[int, dict]:
        """A search checks the vector's dimension like Qdrant (`Vector dimension error`)."""
        if name not in self.collections:
            return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
        size = self.collections[name]["config"]["params"]["vectors"].get("size")
        vector = body.get("vector") or []
        if len(vector) != size:
            return self.error(
                400, f"Wrong input: Vector dimension error: expected dim: {size}, got {len(vector)}"
            )
        scored = sorted(
            (
                {"id": pid, "score": _cosine(vector, p["vector"]), "payload": p["payload"]}
                for pid, p in self.points[name].items()
            ),
            key=lambda hit: -hit["score"],
        )
        return self.ok(scored[: int(body.get("limit", 10))])

    def _upsert(self, name: str, body: dict) -> tuple[int, dict]:
        """PUT /collections/{name}/points: ids are unsigned integers or UUIDs, vectors of the
        collection's dimension (`update_api.rs`, `Vector dimension error`)."""
        if name not in self.collections:
            return self.error(404, f"Not found: Collection `{name}` doesn't exist!")
        size = self.collections[name]["config"]["params"]["vectors"].get("size")
        for point in body.get("points") or []:
            if len(point.get("vector") or []) != size:
                return self.error(400, f"Wrong input: Vector dimension error: expected dim: {size}")
        for point in body.get("points") or []:
            self.points[name][point["id"]] = {
                "vector": point["vector"],
                "payload": point.get("payload") or {},
            }
        self.collections[name]["points_count"] = len(self.points[name])
        return self.ok({"operation_id": 1, "status": "completed"})

    def _delete_points(self, name: str, body: dict) -> tuple[int, dict]:
        for point_id in body.get("points") or []:
            self.points[name].pop(point_id, None)
        self.collections[name]["points_count"] = len(self.points[name])
        return self.ok({"operation_id": 2, "status": "completed"})

    def _create(self, name: str, body: dict) -> tuple[int, dict]:
        vectors = body.get("vectors", {})
        if isinstance(vectors, dict) and "size" in vectors:
            if vectors.get("distance") not in DISTANCES:
                return self.error(
                    400, f"Format error in JSON body: unknown variant `{vectors.get('distance')}`"
                )
            if not isinstance(vectors["size"], int) or vectors["size"] < 1:
                return self.error(400, "Format error in JSON body: data did not match any variant")
            if vectors["size"] > 65536:
                return self.error(
                    422,
                    f"Validation error in JSON body: [vectors.size: value {vectors['size']} invalid, "
                    "must be from 1 to 65536]",
                )
        for key in ("shard_number", "replication_factor", "write_consistency_factor"):
            if key in body and (not isinstance(body[key], int) or body[key] < 1):
                return self.error(
                    422,
                    f"Validation error in JSON body: [{key}: value {body[key]} invalid, must be 1 or larger]",
                )
        if name in self.collections:
            return self.error(409, f"Wrong input: Collection `{name}` already exists!")
        peers = self._peers()
        shard_number = body.get("shard_number", len(peers))
        replication = body.get("replication_factor", 1)
        self.peers_at_create[name] = len(peers)
        self.points[name] = {}
        self.placements[name] = {
            shard: {
                peers[(shard + r) % len(peers)]: (
                    "Initializing" if peers[(shard + r) % len(peers)] in self.dead_peers else "Active"
                )
                for r in range(min(replication, len(peers)))
            }
            for shard in range(shard_number)
        }
        self.collections[name] = {
            "status": "green",
            "points_count": 0,
            "config": {
                "params": {
                    "vectors": vectors,
                    "shard_number": shard_number,
                    "replication_factor": replication,
                    "write_consistency_factor": body.get("write_consistency_factor", 1),
                    "on_disk_payload": True,
                }
            },
        }
        return self.ok(True)


def fetch_snapshot(location: str, checksum: str | None) -> tuple[int, bytes | str]:
    """A recovery's download, by Qdrant's rules (lib/storage/src/content_manager/snapshots/
    download.rs, recover.rs): (200, the file), or (status, the error message). http(s) only: a
    `file://` location must be inside the node's snapshots path, which no fake has; a non-2xx
    answer and a checksum that differs are 400."""
    scheme = urlsplit(location).scheme
    if scheme == "file":
        return 403, "Snapshot file path must be inside the snapshots directory"
    if scheme not in ("http", "https"):
        return 400, f"URL {location} with scheme {scheme} is not supported"
    try:
        with urllib.request.urlopen(location, timeout=30) as answer:  # noqa: S310 (http(s), above)
            data = answer.read()
    except urllib.error.HTTPError as err:
        return 400, f"Failed to download tar from {location}: status - {err.code}"
    digest = hashlib.sha256(data).hexdigest()
    if checksum and checksum != digest:
        return 400, f"Wrong input: Snapshot checksum mismatch: expected {checksum}, got {digest}"
    return 200, data


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = (sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5
    return dot / norm if norm else 0.0
