"""The object storage client and the service scaffolding the backup programs share: an S3
bucket signed with AWS Signature Version 4, a /metrics endpoint, the wait between rounds with a
heartbeat for the health check, and secrets read from Swarm secret files.

The standard library only: the backup services run these modules in the official `python` image,
mounted as Swarm configs at their package paths (components/platform/scripts.py).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import http.server
import os
import re
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass

HEARTBEAT_S = 30
"""How often the wait between rounds touches the heartbeat file (the health check reads it)."""
METRICS_PORT = 9100
"""Each backup service's /metrics: when its last backup succeeded, and how many rounds failed."""


class Metrics:
    """What a backup loop reports to Prometheus, under `<prefix>_…` names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.last_success = 0.0
        self.failures = 0
        self.kept = 0

    def text(self) -> str:
        p = self.prefix
        families = (
            (f"{p}_last_success_timestamp_seconds", "gauge", self.last_success,
             "When the last complete backup was written (0: none yet)"),
            (f"{p}_failures_total", "counter", self.failures, "Backup rounds that failed"),
            (f"{p}_kept", "gauge", self.kept, "Complete backups in the object storage"),
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


def wait(seconds: float, heartbeat: str) -> None:
    """Sleep `seconds`, touching `heartbeat` every HEARTBEAT_S: a hung process stops touching it."""
    wake = time.monotonic() + seconds
    while (left := wake - time.monotonic()) > 0:
        with open(heartbeat, "a"):
            os.utime(heartbeat)
        time.sleep(min(HEARTBEAT_S, left))


def heartbeat_check(heartbeat: str) -> str:
    """The health check's Python: unhealthy once the heartbeat is older than four beats."""
    return (
        f"import os, sys, time; sys.exit(time.time() - os.path.getmtime('{heartbeat}') > {HEARTBEAT_S * 4})"
    )


def secret(variable: str) -> str:
    """The content of the secret file the environment variable `variable` names."""
    with open(os.environ[variable]) as file:
        return file.read().strip()


TIME_FORMAT = "%Y%m%dT%H%M%SZ"
CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore step failed; the message names the node, collection or object."""


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


def backup_times(s3: S3, prefix: str) -> list[str]:
    """The times of the backups under `prefix` that have a manifest (written last), oldest first."""
    times = {
        m[1]
        for key in s3.keys(prefix)
        if (m := re.fullmatch(rf"{re.escape(prefix)}(\d{{8}}T\d{{6}}Z)/manifest\.json", key))
    }
    return sorted(times)


def remove_beyond(s3: S3, prefix: str, keep: int, log: Callable[[str], None]) -> None:
    """Delete the oldest complete backups under `prefix` beyond the newest `keep`."""
    for old in backup_times(s3, prefix)[:-keep]:
        for key in s3.keys(f"{prefix}{old}/"):
            s3.delete(key)
        log(f"backup {old}: removed (keeping the last {keep})")


def s3_from_environment() -> S3:
    """The bucket the service's environment names (S3_ENDPOINT, S3_BUCKET, S3_USER, and the
    password in the file S3_SECRET_KEY_FILE)."""
    return S3(
        os.environ["S3_ENDPOINT"],
        os.environ["S3_BUCKET"],
        os.environ["S3_USER"],
        secret("S3_SECRET_KEY_FILE"),
        os.environ.get("S3_REGION", "us-east-1"),
    )
