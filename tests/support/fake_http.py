"""The scaffolding both API fakes share: a threaded JSON server on a free loopback port that
records every request and asks `handle()` for the answer.

Requests are handled concurrently, as by the real services: `handle()` runs outside the
recording lock, and each fake guards its own state (with a lock it holds only while it reads or
changes that state, never while it waits)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class PlainText(str):
    """An answer sent as Prometheus's text format instead of JSON (a `/metrics` endpoint)."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"


class FakeJsonServer:
    """Subclasses implement `handle(method, path, body, headers) -> (status, json body)`."""

    bind: tuple[str, int] = ("127.0.0.1", 0)
    """Where it listens; the stand-in images of the end-to-end tests (e2e/standins) bind the
    service's own port on every interface of their container."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(self.bind, self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, method: str) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method]

    def writes(self) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] != "GET"]

    def handle(self, method: str, path: str, body: Any, headers: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _route(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.lock:
                    fake.requests.append((self.command, self.path, body))
                status, answer = fake.handle(self.command, self.path, body, self.headers)
                if isinstance(answer, bytes):  # a file (a snapshot download)
                    data, kind = answer, "application/octet-stream"
                elif isinstance(answer, PlainText):
                    data, kind = answer.encode(), PlainText.content_type
                else:
                    data, kind = json.dumps(answer).encode(), "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route  # noqa: N815 (http.server names)

        return Handler
