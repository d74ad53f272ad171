#!/usr/bin/python3
"""Stand-in for `minio server DIR --address :PORT --console-address :PORT`: the health
endpoints and bucket create/head, signed requests only (the access key must be
MINIO_ROOT_USER and the signature made with MINIO_ROOT_PASSWORD, standin.s3_authorization),
buckets as folders under DIR.

Credentials come from the environment, or from the files MINIO_ROOT_USER_FILE and
MINIO_ROOT_PASSWORD_FILE name, as MinIO reads them (cmd/common-main.go loadEnvVarsFromFiles,
readFromSecret): a bare name is looked for under /run/secrets/ first, the content is trimmed,
a missing file counts as unset, and a file's value replaces the variable's."""

from __future__ import annotations

import argparse
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, "/opt/standin")
from standin import die, host_port, s3_authorization

BUCKET = re.compile(r"^/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/?$")


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


def main() -> None:
    if sys.argv[1:2] != ["server"]:
        die(f"unknown command {sys.argv[1:2]}")
    parser = argparse.ArgumentParser(prog="minio server")
    parser.add_argument("dir")
    parser.add_argument("--address", default=":9000")
    parser.add_argument("--console-address")
    args = parser.parse_args(sys.argv[2:])
    user, password = credential("MINIO_ROOT_USER"), credential("MINIO_ROOT_PASSWORD")
    if not user or not password or len(password) < 8:
        die("MINIO_ROOT_USER and MINIO_ROOT_PASSWORD (8 characters or more) must be set")
    data = Path(args.dir)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:
            pass

        def _send(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _signed(self) -> bool:
            return self.headers.get("Authorization", "") == s3_authorization(user, password)

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?")[0]
            if path in ("/minio/health/live", "/minio/health/ready") and self.command in ("GET", "HEAD"):
                return self._send(200)
            if not self._signed():
                return self._send(403, b"<Error><Code>AccessDenied</Code></Error>")
            if path == "/" and self.command == "GET":
                return self._send(200, b"<ListAllMyBucketsResult/>")
            match = BUCKET.match(path)
            if not match:
                return self._send(400, b"<Error><Code>InvalidBucketName</Code></Error>")
            bucket = data / match[1]
            if self.command == "PUT":
                if bucket.exists():
                    return self._send(409, b"<Error><Code>BucketAlreadyOwnedByYou</Code></Error>")
                bucket.mkdir(parents=True)
                return self._send(200)
            if self.command in ("HEAD", "GET"):
                return self._send(200 if bucket.is_dir() else 404)
            return self._send(405)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _route  # noqa: N815

    host, port = host_port(args.address)
    ThreadingHTTPServer((host or "0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
