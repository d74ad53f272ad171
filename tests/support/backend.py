"""A stand-in for one Qdrant node's REST port: answers every request with its own name.

Run as a process (`python -m tests.support.backend PORT NAME`) so a test can SIGKILL it the
way a node dies: every socket it holds is reset at once.
"""

from __future__ import annotations

import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port: int, name: str) -> None:
    body = f'{{"result": {{"node": "{name}"}}, "status": "ok", "time": 0.0}}'.encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keepalive, as Qdrant offers

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; without this, Nagle plus delayed ACKs
            # add ~40 ms to every keepalive request.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 (http.server names)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
