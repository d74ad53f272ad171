"""A fake S3 bucket store whose every request must carry a valid AWS Signature Version 4, checked
by botocore (the reference implementation of the AWS SDKs), in the header form or as a presigned
URL (expiry enforced). Objects live in memory; ListObjectsV2 pages `page` keys at a time, so a
client that ignores continuation tokens misses some. Errors are S3's XML with MinIO's codes."""

from __future__ import annotations

import datetime
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/s3/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)


def reference_signature(
    method: str, url: str, headers: dict[str, str], stamp: str, secret: str, query_auth: bool = False
) -> str:
    """What botocore computes for this request (the signed headers only, the given time)."""
    request = AWSRequest(method=method, url=url, headers=headers)
    request.context["timestamp"] = stamp
    auth_type = S3SigV4QueryAuth if query_auth else S3SigV4Auth
    auth = auth_type(Credentials("unused", secret), "s3", REGION)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


class FakeS3:
    """`bucket` objects behind one access key pair."""

    def __init__(self, access_key: str, secret_key: str, page: int = 2) -> None:
        self.access_key, self.secret_key, self.page = access_key, secret_key, page
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeS3:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _verdict(self, method: str, path: str, headers, query: dict[str, str]) -> str | None:
        """None when the request is signed right; else MinIO's error code."""
        host = headers.get("Host", "")
        if "X-Amz-Signature" in query:
            credential = query.get("X-Amz-Credential", "").split("/")
            if credential[0] != self.access_key:
                return "InvalidAccessKeyId"
            stamp = query["X-Amz-Date"]
            signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
            if datetime.datetime.now(datetime.UTC) > signed_at + datetime.timedelta(
                seconds=int(query["X-Amz-Expires"])
            ):
                return "AccessDenied"  # "Request has expired"
            unsigned = {k: v for k, v in query.items() if k != "X-Amz-Signature"}
            url = f"http://{host}{path}?{urllib.parse.urlencode(unsigned, quote_via=urllib.parse.quote)}"
            expected = reference_signature(
                method, url, {"host": host}, stamp, self.secret_key, query_auth=True
            )
            return None if expected == query["X-Amz-Signature"] else "SignatureDoesNotMatch"
        match = AUTHORIZATION.fullmatch(headers.get("Authorization", ""))
        if not match:
            return "AccessDenied"
        if match["key"] != self.access_key:
            return "InvalidAccessKeyId"
        signed = {name: headers.get(name, "") for name in match["signed"].split(";")}
        stamp = headers.get("x-amz-date", "")
        url = f"http://{host}{path}" + (
            f"?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}" if query else ""
        )
        expected = reference_signature(method, url, signed, stamp, self.secret_key)
        return None if expected == match["signature"] else "SignatureDoesNotMatch"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", kind: str = "application/xml") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str) -> None:
                self._send(status, f"<Error><Code>{code}</Code></Error>".encode())

            def _route(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.unquote(parts.path)
                with fake.lock:
                    fake.requests.append((self.command, self.path))
                verdict = fake._verdict(self.command, parts.path, self.headers, query)
                if verdict:
                    return self._error(403, verdict)
                bucket, _, key = path.lstrip("/").partition("/")
                with fake.lock:
                    if not key:
                        return self._bucket(bucket, query)
                    objects = fake.buckets.get(bucket)
                    if objects is None:
                        return self._error(404, "NoSuchBucket")
                    if self.command == "PUT":
                        objects[key] = body
                        return self._send(200)
                    if key not in objects:
                        return self._error(404, "NoSuchKey")
                    if self.command == "GET":
                        return self._send(200, objects[key], "application/octet-stream")
                    if self.command == "DELETE":
                        del objects[key]
                        return self._send(204)
                return self._error(405, "MethodNotAllowed")

            def _bucket(self, bucket: str, query: dict[str, str]) -> None:
                if self.command == "PUT":
                    if bucket in fake.buckets:
                        return self._error(409, "BucketAlreadyOwnedByYou")
                    fake.buckets[bucket] = {}
                    return self._send(200)
                if bucket not in fake.buckets:
                    return self._error(404, "NoSuchBucket")
                if self.command != "GET" or query.get("list-type") != "2":
                    return self._error(400, "NotImplemented")
                keys = sorted(k for k in fake.buckets[bucket] if k.startswith(query.get("prefix", "")))
                start = int(query.get("continuation-token") or 0)
                page = keys[start : start + fake.page]
                more = start + fake.page < len(keys)
                xml = "".join(f"<Contents><Key>{escape(k)}</Key></Contents>" for k in page)
                xml += f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>"
                if more:
                    xml += f"<NextContinuationToken>{start + fake.page}</NextContinuationToken>"
                ns = "http://s3.amazonaws.com/doc/2006-03-01/"
                self._send(200, f'<ListBucketResult xmlns="{ns}">{xml}</ListBucketResult>'.encode())

            do_GET = do_PUT = do_DELETE = _route  # noqa: N815 (http.server names)

        return Handler
