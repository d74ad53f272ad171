"""What the Python stand-in services share (installed in every stand-in image at /opt/standin).

A stand-in is as strict as the program it replaces where the stack depends on it: it refuses
to start on the arguments the real one refuses, exits when a peer the real one needs at start
is unreachable (so Docker's restart policy and the declared start order are exercised), and
listens only where the real one listens.
"""

from __future__ import annotations

import hashlib
import hmac
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


def _stop(signum: int, _frame: object) -> None:
    sys.exit(128 + signum)


# The real services stop on SIGTERM. A stand-in runs as its container's PID 1, for which the
# kernel ignores a signal that has no handler: without this one, every `docker stop` and
# every removal of a service would wait out the grace period and end in SIGKILL.
signal.signal(signal.SIGTERM, _stop)


def die(message: str, code: int = 1) -> None:
    print(f"{sys.argv[0]}: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def host_port(address: str, default_port: int | None = None) -> tuple[str, int]:
    """`host:port`, `:port` or a URL -> (host, port); an empty host means every interface."""
    if "://" in address:
        parts = urlsplit(address)
        return parts.hostname or "", parts.port or default_port or 80
    host, _, port = address.rpartition(":")
    return host, int(port)


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_reachable(host: str, port: int, within_s: float, what: str) -> None:
    """Retry like the real service's start-up does, then give up (the restart policy retries)."""
    deadline = time.monotonic() + within_s
    while not reachable(host, port):
        if time.monotonic() > deadline:
            die(f"{what} at {host}:{port} unreachable")
        time.sleep(0.5)


def listen_tcp(host: str, port: int) -> None:
    """A port that accepts and closes connections (a protocol the tests never speak)."""
    server = socket.create_server((host or "0.0.0.0", port), reuse_port=False)

    def loop() -> None:
        while True:
            connection, _ = server.accept()
            connection.close()

    threading.Thread(target=loop, daemon=True).start()


def serve_status(host: str, port: int, routes: dict[str, tuple]) -> ThreadingHTTPServer:
    """A small HTTP server answering fixed bodies by path (404 otherwise), in a thread: each
    route (status, body) in JSON, or (status, body, content type), or a function that returns
    one at each request."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            answer = routes.get(self.path.split("?")[0], (404, b'{"msg": "not found"}'))
            status, body, *kind = answer() if callable(answer) else answer
            self.send_response(status)
            self.send_header("Content-Type", kind[0] if kind else "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host or "0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def forever() -> None:
    while True:
        time.sleep(3600)


def s3_authorization(access_key: str, secret_key: str) -> str:
    """The Authorization header the stand-in S3 clients send. Real SigV4 signs each request;
    here the signature only proves the client holds the secret key, which is what the stack
    can get wrong (the stand-in MinIO checks both parts)."""
    return f"AWS4-HMAC-SHA256 Credential={access_key}/stand-in, Signature={s3_signature(secret_key)}"


def s3_signature(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), b"stand-in", hashlib.sha256).hexdigest()
