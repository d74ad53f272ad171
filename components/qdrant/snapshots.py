"""Qdrant backups: every collection's snapshot from every node into the stack's object storage,
a manifest per backup, retention, and a restore that checks the point counts.

The backup service runs it as `python3 -m components.qdrant.snapshots` in the official `python`
image, mounted with components/platform/objectstore.py (components/qdrant/backups.py), and the
restore command runs it there too: the standard library only.

Why one snapshot per node: a collection snapshot holds the shards local to the node it is taken
on (qdrant v1.19 lib/collection/src/shards/replica_set/snapshots.rs), and a recovery restores
only the shards its snapshot holds data for, on that node (lib/storage/src/content_manager/
snapshots/recover.rs). So a backup asks every node, and a restore gives each node its own
snapshot back, with `priority: snapshot` (the snapshot's data wins over the other replicas).

Layout in the bucket: `qdrant/<time>/<collection>/<node>.snapshot` and `qdrant/<time>/manifest.json`,
`<time>` as `YYYYMMDDTHHMMSSZ`. A backup is complete once its manifest exists (written last); a
restore reads only backups with a manifest.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from components.platform.objectstore import (
    CHUNK,
    S3,
    TIME_FORMAT,
    BackupError,
    Metrics,
    backup_times,
    heartbeat_check,
    remove_beyond,
    s3_from_environment,
    secret,
    wait,
)

PREFIX = "qdrant/"
HEARTBEAT = "/tmp/qdrant-backup-alive"  # noqa: S108 (the container's own /tmp)
"""Touched while the service waits between backups: its health check reads the time."""
HEALTH = heartbeat_check(HEARTBEAT)


# -- Qdrant ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Qdrant:
    """Each node's own REST API (a snapshot is the node's, so never through the LB)."""

    nodes: Sequence[str]
    """`http://qdrant-0:6333`, … in node order."""
    api_key: str

    def call(self, node: str, method: str, path: str, body: object | None = None) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(node)
        connection = http.client.HTTPConnection(parts.netloc, timeout=600)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"api-key": self.api_key, "content-type": "application/json"}
        connection.request(method, path, body=data, headers=headers)
        return connection.getresponse()

    def result(self, node: str, method: str, path: str, body: object | None = None) -> object:
        answer = self.call(node, method, path, body)
        data = answer.read()
        if answer.status // 100 != 2:
            try:
                message = json.loads(data)["status"]["error"]
            except (ValueError, KeyError, TypeError):
                message = data.decode(errors="replace")[:200]
            raise BackupError(f"{node} {method} {path}: HTTP {answer.status}: {message}")
        return json.loads(data)["result"]


def _collection_path(name: str) -> str:
    return f"/collections/{urllib.parse.quote(name, safe='')}"


def node_name(index: int) -> str:
    return f"qdrant-{index}"


def backup(
    qdrant: Qdrant,
    s3: S3,
    collections: Sequence[str],
    keep: int,
    now: datetime.datetime | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """One backup of every collection from every node; returns its manifest. Then the oldest
    complete backups beyond `keep` go. A node or collection that fails stops the backup before
    its manifest: an incomplete backup is never one a restore would use."""
    moment = now or datetime.datetime.now(datetime.UTC)
    stamp = moment.strftime(TIME_FORMAT)
    entries = []
    totals: dict[str, int] = {}
    for collection in collections:
        path = _collection_path(collection)
        totals[collection] = qdrant.result(qdrant.nodes[0], "POST", f"{path}/points/count", {"exact": True})[
            "count"
        ]
        for index, node in enumerate(qdrant.nodes):
            described = qdrant.result(node, "POST", f"{path}/snapshots?wait=true")
            name = described["name"]
            key = f"{PREFIX}{stamp}/{collection}/{node_name(index)}.snapshot"
            download = qdrant.call(node, "GET", f"{path}/snapshots/{urllib.parse.quote(name)}")
            if download.status != 200:
                raise BackupError(f"{node}: download of snapshot {name}: HTTP {download.status}")
            digest = hashlib.sha256()

            def chunks(answer: http.client.HTTPResponse = download, digest=digest) -> Iterator[bytes]:
                while chunk := answer.read(CHUNK):
                    digest.update(chunk)
                    yield chunk

            s3.put(key, chunks(), length=int(download.getheader("Content-Length") or described["size"]))
            # The node keeps no copy: the object storage is where backups live.
            qdrant.result(node, "DELETE", f"{path}/snapshots/{urllib.parse.quote(name)}")
            cluster = qdrant.result(node, "GET", f"{path}/cluster")
            shards = [
                {"shard_id": s["shard_id"], "points_count": s["points_count"]}
                for s in cluster["local_shards"]
            ]
            entries.append(
                {
                    "collection": collection,
                    "node": node_name(index),
                    "peer_id": cluster["peer_id"],
                    "snapshot": name,
                    "key": key,
                    "sha256": digest.hexdigest(),
                    "shards": shards,
                }
            )
            log(f"backup {stamp}: {collection} from {node_name(index)}, {len(shards)} local shard(s): {key}")
    manifest = {"time": stamp, "nodes": len(qdrant.nodes), "points": totals, "snapshots": entries}
    s3.put(f"{PREFIX}{stamp}/manifest.json", json.dumps(manifest, indent=2).encode())
    remove_beyond(s3, PREFIX, keep, log)
    return manifest


def complete_backups(s3: S3) -> list[str]:
    """The times of the Qdrant backups that have a manifest, oldest first."""
    return backup_times(s3, PREFIX)


def restore(
    qdrant: Qdrant,
    s3: S3,
    collection: str,
    snapshot_time: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Give each node its snapshot of `collection` back (priority `snapshot`: it wins over the
    other replicas), from the latest complete backup or the one of `snapshot_time`, then check
    the exact point count against the manifest. Refuses a manifest it cannot apply (another
    number of nodes, no snapshot of the collection) before touching any node."""
    times = complete_backups(s3)
    if not times:
        raise BackupError("no complete backup in the object storage (no manifest under qdrant/)")
    chosen = snapshot_time or times[-1]
    if chosen not in times:
        raise BackupError(f"no complete backup at {chosen}; there are: {', '.join(times)}")
    manifest = json.loads(s3.get(f"{PREFIX}{chosen}/manifest.json"))
    entries = [e for e in manifest["snapshots"] if e["collection"] == collection]
    if collection not in manifest["points"] or not entries:
        raise BackupError(f"the backup of {chosen} has no snapshot of collection {collection}")
    if manifest["nodes"] != len(qdrant.nodes) or len(entries) != len(qdrant.nodes):
        raise BackupError(
            f"the backup of {chosen} holds {len(entries)} node snapshot(s) of {manifest['nodes']} node(s); "
            f"the cluster has {len(qdrant.nodes)}: a node's snapshot restores that node's shards only"
        )
    path = _collection_path(collection)
    for entry in entries:
        node = qdrant.nodes[int(entry["node"].rsplit("-", 1)[1])]
        location = s3.presigned_get(entry["key"])
        body = {"location": location, "priority": "snapshot", "checksum": entry["sha256"]}
        qdrant.result(node, "PUT", f"{path}/snapshots/recover?wait=true", body)
        log(f"restore {chosen}: {collection} on {entry['node']} from {entry['key']}")
    expected = manifest["points"][collection]
    counted = qdrant.result(qdrant.nodes[0], "POST", f"{path}/points/count", {"exact": True})["count"]
    if counted != expected:
        raise BackupError(
            f"restored {collection} holds {counted} point(s); the backup of {chosen} had {expected}"
        )
    log(f"restore {chosen}: {collection} holds {counted} point(s), as the manifest says")
    return {"time": chosen, "collection": collection, "points": counted}


# -- the backup service and the restore command -------------------------------------------------


def _from_environment() -> tuple[Qdrant, S3, list[str]]:
    """The service's settings (components/qdrant/backups.py sets them; secrets are files)."""
    qdrant = Qdrant(os.environ["QDRANT_NODES"].split(","), secret("QDRANT_API_KEY_FILE"))
    collections = [c for c in os.environ.get("COLLECTIONS", "").split(",") if c]
    return qdrant, s3_from_environment(), collections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="snapshots", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    schedule = commands.add_parser("schedule", help="back up every --every seconds, keeping --keep")
    schedule.add_argument("--every", type=int, required=True)
    schedule.add_argument("--keep", type=int, required=True)
    once = commands.add_parser("restore", help="restore a collection from the latest backup or --snapshot")
    once.add_argument("--collection", required=True)
    once.add_argument("--snapshot", help="a backup time, YYYYMMDDTHHMMSSZ")
    commands.add_parser("list", help="the complete backups: time, collections and their point counts")
    now = commands.add_parser("backup", help="one backup now, keeping --keep")
    now.add_argument("--keep", type=int, required=True)
    args = parser.parse_args(argv)
    qdrant, s3, collections = _from_environment()
    if args.command == "list":
        for stamp in complete_backups(s3):
            points = json.loads(s3.get(f"{PREFIX}{stamp}/manifest.json"))["points"]
            print(stamp, " ".join(f"{name}={count}" for name, count in sorted(points.items())))
        return 0
    if args.command == "backup":
        try:
            s3.ensure_bucket()
            backup(qdrant, s3, collections, args.keep)
        except (BackupError, OSError) as err:
            print(f"backup: {err}", file=sys.stderr)
            return 1
        return 0
    if args.command == "restore":
        try:
            restore(qdrant, s3, args.collection, args.snapshot)
        except BackupError as err:
            print(f"restore: {err}", file=sys.stderr)
            return 1
        return 0
    metrics = Metrics("qdrant_backup")
    metrics.serve()
    while True:
        try:
            s3.ensure_bucket()
            backup(qdrant, s3, collections, args.keep)
            metrics.last_success = time.time()
            metrics.kept = len(complete_backups(s3))
        except (BackupError, OSError) as err:
            # The next round tries again; the failure is in the log and in the metrics.
            metrics.failures += 1
            print(f"backup failed: {err}", file=sys.stderr, flush=True)
        wait(args.every, HEARTBEAT)


if __name__ == "__main__":
    sys.exit(main())
