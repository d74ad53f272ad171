"""Qdrant backups: every collection's snapshot from every node into the stack's object storage,
a manifest per backup, retention, and a restore that checks the point counts.

This file runs as it is in the official `python` image (the backup service mounts it as a
Swarm config, components/qdrant/backups.py) and in the restore command: the standard library
only.

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
import hmac
import http.client
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

PREFIX = "qdrant/"
HEARTBEAT = "/tmp/qdrant-backup-alive"  # noqa: S108 (the container's own /tmp)
"""Touched every HEARTBEAT_S while the service waits: its health check reads the time."""
HEARTBEAT_S = 30
METRICS_PORT = 9100
"""The service's /metrics: when the last backup succeeded, and how many rounds failed."""


class Metrics:
    """What the schedule loop reports to Prometheus."""

    def __init__(self) -> None:
        self.last_success = 0.0
        self.failures = 0
        self.kept = 0

    def text(self) -> str:
        families = (
            ("qdrant_backup_last_success_timestamp_seconds", "gauge", self.last_success,
             "When the last complete backup was written (0: none yet)"),
            ("qdrant_backup_failures_total", "counter", self.failures, "Backup rounds that failed"),
            ("qdrant_backup_kept", "gauge", self.kept, "Complete backups in the object storage"),
        )  # fmt: skip
        return "".join(f"# HELP {n} {h}\n# TYPE {n} {t}\n{n} {v}\n" for n, t, v, h in families)

    def serve(self, port: int = METRICS_PORT) -> None:
        metrics = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body = metrics.text().encode() if self.path == "/metrics" else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer(("", port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()


TIME_FORMAT = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore step failed; the message names the node, collection or object."""


# -- object storage (S3 API, signature version 4) -------------------------------------------------


@dataclass(frozen=True)
class S3:
    """A bucket on an S3-compatible store, signed as AWS Signature Version 4 specifies."""

    endpoint: str
    bucket: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def _canonical(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], payload: str
    ):
        quoted = urllib.parse.quote(path, safe="/~")
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}"
            for k, v in sorted(query.items())
        )
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in names)
        signed = ";".join(names)
        request = "\n".join([method, quoted, canonical_query, canonical_headers, signed, payload])
        return request, signed

    def _signature(self, stamp: str, request: str) -> tuple[str, str]:
        day = stamp[:8]
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return scope, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

    def _path(self, key: str = "") -> str:
        return f"/{self.bucket}/{key}" if key else f"/{self.bucket}"

    def _host(self) -> str:
        return urllib.parse.urlsplit(self.endpoint).netloc

    def request(
        self,
        method: str,
        key: str = "",
        query: dict[str, str] | None = None,
        body: bytes | Iterator[bytes] | None = None,
        length: int | None = None,
        now: datetime.datetime | None = None,
    ) -> http.client.HTTPResponse:
        """One signed request; the answer unread. A streamed body is sent with its `length`
        and an unsigned payload (the content is not hashed in advance)."""
        query = query or {}
        stamp = (now or datetime.datetime.now(datetime.UTC)).strftime(TIME_FORMAT)
        if isinstance(body, bytes) or body is None:
            data = body or b""
            payload = hashlib.sha256(data).hexdigest()
            length = len(data)
        else:
            payload = "UNSIGNED-PAYLOAD"
        headers = {"host": self._host(), "x-amz-content-sha256": payload, "x-amz-date": stamp}
        request, signed = self._canonical(method, self._path(key), query, headers, payload)
        scope, signature = self._signature(stamp, request)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        parts = urllib.parse.urlsplit(self.endpoint)
        connection_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_type(parts.netloc, timeout=60)
        target = urllib.parse.quote(self._path(key), safe="/~")
        if query:
            target += "?" + urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote)
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("content-length", str(length or 0))
        connection.endheaders()
        if isinstance(body, bytes):
            connection.send(body)
        elif body is not None:
            for chunk in body:
                connection.send(chunk)
        return connection.getresponse()

    def _ok(self, answer: http.client.HTTPResponse, what: str) -> bytes:
        data = answer.read()
        if answer.status // 100 != 2:
            code = re.search(rb"<Code>([^<]+)</Code>", data)
            raise BackupError(
                f"object storage: {what}: HTTP {answer.status} {code[1].decode() if code else ''}"
            )
        return data

    def ensure_bucket(self) -> None:
        answer = self.request("PUT")
        data = answer.read()
        if answer.status // 100 != 2 and b"BucketAlreadyOwnedByYou" not in data:
            raise BackupError(f"object storage: cannot create bucket {self.bucket}: HTTP {answer.status}")

    def put(self, key: str, body: bytes | Iterator[bytes], length: int | None = None) -> None:
        self._ok(self.request("PUT", key, body=body, length=length), f"PUT {key}")

    def get(self, key: str) -> bytes:
        return self._ok(self.request("GET", key), f"GET {key}")

    def delete(self, key: str) -> None:
        self._ok(self.request("DELETE", key), f"DELETE {key}")

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (ListObjectsV2, following continuation tokens)."""
        found: list[str] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            listing = self._ok(self.request("GET", query=query), f"list {prefix}")
            root = ElementTree.fromstring(listing)  # noqa: S314 (the stack's own store answers)
            space = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
            found += [node.text or "" for node in root.iter(f"{space}Key")]
            token_node = root.find(f"{space}NextContinuationToken")
            if root.findtext(f"{space}IsTruncated") != "true" or token_node is None:
                return found
            token = token_node.text

    def presigned_get(self, key: str, expires_s: int = 3600, now: datetime.datetime | None = None) -> str:
        """A URL anyone holding it may GET `key` with, for `expires_s` (query signing)."""
        stamp = (now or datetime.datetime.now(datetime.UTC)).strftime(TIME_FORMAT)
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.access_key}/{scope}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(expires_s),
            "X-Amz-SignedHeaders": "host",
        }
        request, _ = self._canonical(
            "GET", self._path(key), query, {"host": self._host()}, "UNSIGNED-PAYLOAD"
        )
        _, signature = self._signature(stamp, request)
        query["X-Amz-Signature"] = signature
        encoded = urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote)
        return f"{self.endpoint}{urllib.parse.quote(self._path(key), safe='/~')}?{encoded}"


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
    for old in complete_backups(s3)[:-keep]:
        for key in s3.keys(f"{PREFIX}{old}/"):
            s3.delete(key)
        log(f"backup {old}: removed (keeping the last {keep})")
    return manifest


def complete_backups(s3: S3) -> list[str]:
    """The times of the backups that have a manifest, oldest first."""
    times = {
        m[1]
        for key in s3.keys(PREFIX)
        if (m := re.fullmatch(rf"{PREFIX}(\d{{8}}T\d{{6}}Z)/manifest\.json", key))
    }
    return sorted(times)


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

    def secret(name: str) -> str:
        with open(os.environ[name]) as file:
            return file.read().strip()

    qdrant = Qdrant(os.environ["QDRANT_NODES"].split(","), secret("QDRANT_API_KEY_FILE"))
    s3 = S3(
        os.environ["S3_ENDPOINT"],
        os.environ["S3_BUCKET"],
        os.environ["S3_USER"],
        secret("S3_SECRET_KEY_FILE"),
        os.environ.get("S3_REGION", "us-east-1"),
    )
    return qdrant, s3, [c for c in os.environ.get("COLLECTIONS", "").split(",") if c]


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
    metrics = Metrics()
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
        wake = time.monotonic() + args.every
        while (left := wake - time.monotonic()) > 0:
            with open(HEARTBEAT, "a"):
                os.utime(HEARTBEAT)
            time.sleep(min(HEARTBEAT_S, left))


if __name__ == "__main__":
    sys.exit(main())
