"""A stand-in for one Qdrant node's REST port: answers every request with its own name.

Run as a process (`python -m tests.support.backend PORT NAME [MODE]`) so a test can SIGKILL it
the way a node dies: every socket it holds is reset at once. MODE `503` answers every request
with 503 (a node that is up but refuses work); `drop` reads each request and resets the
connection without an answer (a node that dies mid-request). `GET /_stats` answers, in every
mode, how many connections were accepted and which requests arrived, for keepalive and retry
checks.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port: int, name: str, mode: str = "ok") -> None:
    body = f'{{"result": {{"node": "{name}"}}, "status": "ok", "time": 0.0}}'.encode()
    lock = threading.Lock()
    stats: dict = {"connections": 0, "requests": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keepalive, as Qdrant offers

        def setup(self) -> None:
            super().setup()
            with lock:
                stats["connections"] += 1
            # Headers and body go out in two writes; without this, Nagle plus delayed ACKs
            # add ~40 ms to every keepalive request.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path == "/_stats":
                with lock:
                    self._send(200, json.dumps(stats).encode())
                return
            with lock:
                stats["requests"].append(f"{self.command} {self.path}")
            if mode == "drop":
                # Reset, not a clean close: what the peer of a killed process sees.
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.request.close()
                self.close_connection = True
                return
            if mode == "503":
                self._send(503, b'{"status": {"error": "Service unavailable"}, "time": 0.0}')
                return
            self._send(200, body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server names)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], *sys.argv[3:4])
