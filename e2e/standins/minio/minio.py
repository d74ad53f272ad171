#!/usr/bin/python3
"""Stand-in for `minio server ENDPOINTS --address :PORT --console-address :PORT`, one drive or
an erasure-coded deployment over several servers, with MinIO's rules (RELEASE.2025-09-07):

- ENDPOINTS are local paths (`/data`, `/data{0...3}`) or URLs
  (`http://minio-{0...2}:9000/data{0...1}`), ellipses expanded (cmd/endpoint-ellipses.go). A URL
  endpoint is this server's when its name resolves to an address of this container and its
  port is `--address`'s (cmd/net.go isLocalHost); in a container an unresolvable name is retried
  every second, forever (the peers' tasks may not be up yet).
- Every local drive path must exist. The drives form one erasure set: parity 1 for 2-3 drives,
  2 for 4-5, 3 for 6-7, 4 from 8 (internal/config/storageclass DefaultParityBlocks); writes need
  the data drives, one more when data equals parity, reads the data drives (cmd/erasure.go).
- A fresh deployment is formatted by the server of the first endpoint, and only once every
  drive is online (cmd/prepare-storage.go shouldInitErasureDisks); until then S3 calls answer
  503 XMinioServerNotInitialized. A formatted drive keeps `.minio.sys/format.json`, so a
  restarted server is back at once.
- Health (cmd/healthcheck-handler.go): `/minio/health/live` and `/ready` answer 200 as soon as
  the listener is up, with `x-minio-server-status: offline` before the store has formed;
  `/minio/health/cluster` is 200 only with a write quorum of drives online (`/cluster/read`: a
  read quorum), else 503.
- S3 calls are signed (the access key must be MINIO_ROOT_USER and the signature made with
  MINIO_ROOT_PASSWORD, standin.s3_authorization, or SigV4); buckets are folders on every drive.
  A bucket is made on every online drive and exists where a read quorum of drives holds it; too
  few drives online answers 503. An object is a whole copy on every drive holding its bucket
  (erasure coding's shards are beyond the stand-in, its quorums are not): a write needs the
  write quorum of drives to take it, a read or a listing a read quorum online.
- Servers talk to each other on `/minio/standin/…`, signed with the same root credentials (real
  MinIO signs its internode calls with them: cmd/jwt.go authenticateNode), so a server with
  other credentials counts as offline.

Credentials come from the environment, or from the files MINIO_ROOT_USER_FILE and
MINIO_ROOT_PASSWORD_FILE name, as MinIO reads them (cmd/common-main.go loadEnvVarsFromFiles,
readFromSecret): a bare name is looked for under /run/secrets/ first, the content is trimmed,
a missing file counts as unset, and a file's value replaces the variable's."""

from __future__ import annotations

import argparse
import calendar
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, "/opt/standin")
from standin import die, host_port, s3_authorization
from tests.support.sigv4 import S3

from tests.support.fake_http import PlainText
from tests.support.fake_metrics import minio_exposition

AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/\d{8}/(?P<region>[^/]+)/s3/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)
OBJECT = re.compile(r"^/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")


def sigv4_valid(method: str, raw_path: str, query: dict[str, str], headers, user: str, password: str) -> bool:
    """An AWS Signature Version 4, in the header or as a presigned URL (expiry enforced)."""
    path = urllib.parse.unquote(raw_path)
    if "X-Amz-Signature" in query:
        key, _day, region, *_ = [*query.get("X-Amz-Credential", "").split("/"), "", "", ""]
        stamp = query.get("X-Amz-Date", "")
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        if key != user or time.time() > signed_at + int(query.get("X-Amz-Expires", "0")):
            return False
        s3 = S3("", "", user, password, region)
        unsigned = {k: v for k, v in query.items() if k != "X-Amz-Signature"}
        request, _ = s3._canonical(
            method, path, unsigned, {"host": headers.get("Host", "")}, "UNSIGNED-PAYLOAD"
        )
        return s3._signature(stamp, request)[1] == query["X-Amz-Signature"]
    match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
    if not match or match["key"] != user:
        return False
    s3 = S3("", "", user, password, match["region"])
    signed = {name: headers.get(name, "") for name in match["signed"].split(";")}
    request, _ = s3._canonical(method, path, query, signed, headers.get("x-amz-content-sha256", ""))
    return s3._signature(headers.get("x-amz-date", ""), request)[1] == match["signature"]


METRICS_PATH = "/minio/v2/metrics/cluster"

BUCKET = re.compile(r"^/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?$")
ELLIPSIS = re.compile(r"\{(\d+)\.\.\.(\d+)\}")
FORMAT = Path(".minio.sys") / "format.json"


def credential(name: str) -> str | None:
    """`name` from the environment, or from the file `<name>_FILE` names."""
    if os.environ.get(f"{name}_FILE"):
        path = os.environ[f"{name}_FILE"]
        in_secrets = os.path.join("/run/secrets/", path.lstrip("/"))
        if os.path.isfile(in_secrets):
            path = in_secrets
        try:
            with open(path) as file:
                value = file.read().strip()
        except FileNotFoundError:
            value = ""
        if value:
            return value
    return os.environ.get(name)


def expand(pattern: str) -> list[str]:
    match = ELLIPSIS.search(pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [f"{head}{n}{rest}" for n in range(int(match[1]), int(match[2]) + 1) for rest in expand(tail)]


def parity(drives: int) -> int:
    return 0 if drives <= 1 else 1 if drives <= 3 else 2 if drives <= 5 else 3 if drives <= 7 else 4


def quorums(drives: int) -> tuple[int, int]:
    """(write, read) quorum of one erasure set."""
    data = drives - parity(drives)
    return (data + 1 if data == parity(drives) else data), data


def is_local(host: str) -> bool | None:
    """Whether `host` resolves to an address of this container (binding it succeeds only then);
    None when it does not resolve (yet)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, socket.AF_INET)}
    except socket.gaierror:
        print(f"Unable to resolve DNS for {host}", flush=True)
        return None
    for address in addresses:
        with socket.socket() as probe:
            try:
                probe.bind((address, 0))
                return True
            except OSError:
                continue
    return False


def local_hosts(hosts: list[str]) -> set[str]:
    """The endpoint hosts that are this container. In a container, as MinIO does
    (cmd/endpoint.go UpdateIsLocal), the names are resolved again every second until one of
    them is local; a name that does not resolve then is a peer not up yet."""
    while True:
        local = {host for host in dict.fromkeys(hosts) if is_local(host)}
        if local:
            return local
        time.sleep(1)


def parse_endpoint(endpoint: str) -> tuple[str, str, int, str]:
    """(host:port, host, port, path) of an endpoint; a path endpoint has no host."""
    if "://" not in endpoint:
        return "", "", 0, endpoint
    address, _, path = endpoint.split("://", 1)[1].partition("/")
    host, _, port = address.partition(":")
    return address, host, int(port or 80), "/" + path


def drive_object(drive: Path, method: str, bucket: str, key: str, body: bytes) -> list[bytes]:
    """One drive's part of an object call: [] when the drive lacks the bucket (or the object,
    for GET and DELETE); else [the bytes] for GET, [b""] for a PUT or DELETE done. Each drive
    keeps a whole copy: erasure coding's shards are beyond the stand-in, its quorums are not."""
    folder = drive / bucket
    path = folder / "objects" / key
    if not folder.is_dir():
        return []
    if method == "PUT":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return [b""]
    if not path.is_file():
        return []
    if method == "GET":
        return [path.read_bytes()]
    path.unlink()
    return [b""]


def drive_keys(drive: Path, bucket: str, prefix: str) -> set[str]:
    root = drive / bucket / "objects"
    if not root.is_dir():
        return set()
    return {k for p in root.rglob("*") if p.is_file() and (k := str(p.relative_to(root))).startswith(prefix)}


class Node:
    """This server: its drives, its peers (host:port -> their drive count), and the store's state."""

    def __init__(self, endpoints: list[str], port: int, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.local: list[Path] = []
        self.peers: dict[str, int] = {}
        parsed = [parse_endpoint(e) for e in endpoints]
        # Only an endpoint on --address's port can be this server's (cmd/net.go isLocalHost).
        candidates = [host for _, host, endpoint_port, _ in parsed if host and endpoint_port == port]
        mine = local_hosts(candidates) if candidates else set()
        for address, host, endpoint_port, path in parsed:
            if not host or (host in mine and endpoint_port == port):
                self.local.append(Path(path))
            else:
                self.peers[address] = self.peers.get(address, 0) + 1
        first_host = parsed[0][1]
        self.first_is_local = not first_host or first_host in mine
        if not self.local:
            die("no endpoint of the command line is this server (check the names and --address)")
        for drive in self.local:
            if not drive.is_dir():
                die(f"drive {drive} does not exist")
        self.total = len(endpoints)
        self.write_quorum, self.read_quorum = quorums(self.total)

    @property
    def formed(self) -> bool:
        return all((drive / FORMAT).exists() for drive in self.local)

    def format_local(self) -> None:
        for drive in self.local:
            (drive / FORMAT).parent.mkdir(parents=True, exist_ok=True)
            (drive / FORMAT).write_text(json.dumps({"version": "1", "format": "xl", "drives": self.total}))

    def call(self, peer: str, method: str, path: str) -> tuple[int, dict]:
        """A signed internode call answering JSON; (0, {}) when the peer is offline."""
        status, answer = self.call_raw(peer, method, path, timeout=2)
        if status // 100 != 2:
            return status, {}
        try:
            return status, json.loads(answer or b"{}")
        except ValueError:
            return 0, {}

    def call_raw(
        self, peer: str, method: str, path: str, body: bytes | None = None, timeout: float = 10
    ) -> tuple[int, bytes]:
        """A signed internode call carrying and answering bytes; (0, b"") when the peer is offline."""
        request = urllib.request.Request(
            f"http://{peer}/minio/standin{path}",
            data=body,
            method=method,
            headers={"Authorization": s3_authorization(self.user, self.password)},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, b""
        except OSError:
            return 0, b""

    def object_copies(self, method: str, bucket: str, key: str, body: bytes = b"") -> tuple[int, list[bytes]]:
        """The object on every online drive: written (PUT), read (GET) or removed (DELETE).
        Returns (online drives, what each drive holding it answered: its bytes for GET)."""
        online, done = 0, []
        quoted = urllib.parse.quote(f"{bucket}/{key}")
        for drive in self.local:
            online += 1
            done += drive_object(drive, method, bucket, key, body)
        for peer, drives in self.peers.items():
            status, answer = self.call_raw(
                peer, method, f"/object/{quoted}", body if method == "PUT" else None
            )
            if status == 0:
                continue
            online += drives
            if status == 200:
                copies = json.loads(answer)
                done += [bytes.fromhex(c) for c in copies]
        return online, done

    def keys(self, bucket: str, prefix: str) -> tuple[int, set[str]]:
        """(online drives, the keys under `prefix` some online drive holds)."""
        online, found = len(self.local), set()
        for drive in self.local:
            found |= drive_keys(drive, bucket, prefix)
        for peer, drives in self.peers.items():
            status, answer = self.call_raw(peer, "GET", f"/keys/{bucket}?prefix={urllib.parse.quote(prefix)}")
            if status == 200:
                online += drives
                found |= set(json.loads(answer))
        return online, found

    def online_drives(self) -> int:
        """Local drives plus those of every peer that answers with the same credentials."""
        online = len(self.local)
        for peer, drives in self.peers.items():
            if self.call(peer, "GET", "/status")[0] == 200:
                online += drives
        return online

    def bucket_drives(self, name: str, make: bool) -> tuple[int, int]:
        """(online drives, drives holding bucket `name`), making it first where `make`."""
        online = held = 0
        for drive in self.local:
            online += 1
            if make:
                (drive / name).mkdir(exist_ok=True)
            held += (drive / name).is_dir()
        for peer, drives in self.peers.items():
            status, body = self.call(peer, "PUT" if make else "GET", f"/bucket/{name}")
            if status == 200:
                online += drives
                held += body["held"]
        return online, held

    def form(self) -> None:
        """The first endpoint's server formats every drive once all of them are online."""
        while not self.formed:
            if self.first_is_local:
                if self.online_drives() == self.total:
                    for peer in self.peers:
                        self.call(peer, "PUT", "/format")
                    self.format_local()
                else:
                    print("Waiting for all other servers to be online to format the drives", flush=True)
            time.sleep(1)


def main() -> None:
    if sys.argv[1:2] != ["server"]:
        die(f"unknown command {sys.argv[1:2]}")
    parser = argparse.ArgumentParser(prog="minio server")
    parser.add_argument("endpoints", nargs="+")
    parser.add_argument("--address", default=":9000")
    parser.add_argument("--console-address")
    args = parser.parse_args(sys.argv[2:])
    user, password = credential("MINIO_ROOT_USER"), credential("MINIO_ROOT_PASSWORD")
    if not user or not password or len(password) < 8:
        die("MINIO_ROOT_USER and MINIO_ROOT_PASSWORD (8 characters or more) must be set")
    endpoints = [e for pattern in args.endpoints for e in expand(pattern)]
    if any("://" in e for e in endpoints) != all("://" in e for e in endpoints):
        die("all endpoints must be paths or all URLs")
    host, port = host_port(args.address)
    node = Node(endpoints, port, user, password)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _signed(self, query: dict[str, str]) -> bool:
            # The Neon stand-ins' short form (standin.s3_authorization), or SigV4 as a real
            # client (the Qdrant backup service) signs.
            if self.headers.get("Authorization", "") == s3_authorization(user, password):
                return True
            return sigv4_valid(self.command, self.path.split("?")[0], query, self.headers, user, password)

        def _object(self, bucket: str, key: str, body: bytes) -> None:
            """An object on every drive: a write needs the write quorum of drives to take it, a
            read finds it on a read quorum's worth of online drives (cmd/erasure-object.go)."""
            online, done = node.object_copies(self.command, bucket, key, body)
            if self.command == "PUT":
                if len(done) < node.write_quorum:
                    if online < node.write_quorum:
                        return self._send(503, b"<Error><Code>InsufficientWriteQuorum</Code></Error>")
                    return self._send(404, b"<Error><Code>NoSuchBucket</Code></Error>")
                return self._send(200)
            if online < node.read_quorum:
                return self._send(503, b"<Error><Code>InsufficientReadQuorum</Code></Error>")
            if self.command == "GET":
                if not done:
                    return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>")
                return self._send(200, done[0], {"Content-Type": "application/octet-stream"})
            if self.command == "DELETE":
                return self._send(204)
            return self._send(405)

        def _list(self, bucket: str, prefix: str) -> None:
            online, keys = node.keys(bucket, prefix)
            if online < node.read_quorum:
                return self._send(503, b"<Error><Code>InsufficientReadQuorum</Code></Error>")
            xml = (
                "".join(f"<Contents><Key>{k}</Key></Contents>" for k in sorted(keys))
                + "<IsTruncated>false</IsTruncated>"
            )
            ns = "http://s3.amazonaws.com/doc/2006-03-01/"
            self._send(200, f'<ListBucketResult xmlns="{ns}">{xml}</ListBucketResult>'.encode())

        def _internode(self, path: str, body: bytes) -> None:
            if path == "/minio/standin/status" and self.command == "GET":
                return self._send(200, b"{}")
            if path == "/minio/standin/format" and self.command == "PUT":
                node.format_local()
                return self._send(200, b"{}")
            match = re.fullmatch(r"/minio/standin/object/([a-z0-9.-]+)/(.+)", path)
            if match and self.command in ("GET", "PUT", "DELETE"):
                bucket, key = match[1], urllib.parse.unquote(match[2])
                copies = [c for d in node.local for c in drive_object(d, self.command, bucket, key, body)]
                return self._send(200, json.dumps([c.hex() for c in copies]).encode())
            match = re.fullmatch(r"/minio/standin/keys/([a-z0-9.-]+)", path)
            if match and self.command == "GET":
                prefix = dict(urllib.parse.parse_qsl(self.path.partition("?")[2])).get("prefix", "")
                found = set().union(*(drive_keys(d, match[1], prefix) for d in node.local))
                return self._send(200, json.dumps(sorted(found)).encode())
            match = re.fullmatch(r"/minio/standin/bucket/([a-z0-9.-]+)", path)
            if match and self.command in ("GET", "PUT"):
                held = 0
                for drive in node.local:
                    if self.command == "PUT" and node.formed:
                        (drive / match[1]).mkdir(exist_ok=True)
                    held += (drive / match[1]).is_dir()
                return self._send(200, json.dumps({"held": held}).encode())
            return self._send(404)

        def _metrics(self, formed: bool) -> None:
            # Without a token only in public mode (cmd/metrics-router.go); the health as the
            # cluster endpoint reports it, from this node's view of the drives.
            if os.environ.get("MINIO_PROMETHEUS_AUTH_TYPE") != "public":
                return self._send(403, b"<Error><Code>AccessDenied</Code></Error>")
            online = node.online_drives()
            text = minio_exposition(
                formed and online >= node.write_quorum, node.total - online, f"{host}:{port}"
            )
            self._send(200, text.encode(), {"Content-Type": PlainText.content_type})

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            query = dict(urllib.parse.parse_qsl(self.path.partition("?")[2], keep_blank_values=True))
            formed = node.formed
            offline = {} if formed else {"x-minio-server-status": "offline"}
            if path in ("/minio/health/live", "/minio/health/ready") and self.command in ("GET", "HEAD"):
                return self._send(200, headers=offline)
            cluster = ("/minio/health/cluster", "/minio/health/cluster/read")
            if path in cluster and self.command in ("GET", "HEAD"):
                needed = node.read_quorum if path.endswith("/read") else node.write_quorum
                healthy = formed and node.online_drives() >= needed
                return self._send(200 if healthy else 503, headers=offline)
            if path == METRICS_PATH and self.command == "GET":
                return self._metrics(formed)
            if not self._signed(query):
                return self._send(403, b"<Error><Code>SignatureDoesNotMatch</Code></Error>")
            if path.startswith("/minio/standin/"):
                return self._internode(path, body)
            if not formed:
                return self._send(503, b"<Error><Code>XMinioServerNotInitialized</Code></Error>")
            if path == "/" and self.command == "GET":
                return self._send(200, b"<ListAllMyBucketsResult/>")
            if match := OBJECT.match(path):
                return self._object(match[1], urllib.parse.unquote(match[2]), body)
            match = BUCKET.match(path)
            if not match:
                return self._send(400, b"<Error><Code>InvalidBucketName</Code></Error>")
            if self.command == "GET" and query.get("list-type") == "2":
                return self._list(match[1], query.get("prefix", ""))
            if self.command == "PUT":
                online, held = node.bucket_drives(match[1], make=False)
                if held >= node.read_quorum:
                    return self._send(409, b"<Error><Code>BucketAlreadyOwnedByYou</Code></Error>")
                online, held = node.bucket_drives(match[1], make=True)
                if held < node.write_quorum:
                    return self._send(503, b"<Error><Code>InsufficientWriteQuorum</Code></Error>")
                return self._send(200)
            if self.command in ("HEAD", "GET"):
                online, held = node.bucket_drives(match[1], make=False)
                if online < node.read_quorum:
                    return self._send(503, b"<Error><Code>InsufficientReadQuorum</Code></Error>")
                return self._send(200 if held >= node.read_quorum else 404)
            return self._send(405)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _route  # noqa: N815

    threading.Thread(target=node.form, daemon=True).start()
    print(f"MinIO stand-in: {len(node.local)} local drive(s) of {node.total}", flush=True)
    ThreadingHTTPServer((host or "0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
