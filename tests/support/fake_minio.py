"""A fake distributed MinIO deployment: one HTTP server per node, answering the health
endpoints as MinIO does (cmd/healthcheck-handler.go, RELEASE.2025-09-07):

- `GET /minio/health/live`: 200 from a running server, with `x-minio-server-status: offline`
  until the store has formed (its HTTP listener starts before the object layer);
- `GET /minio/health/cluster`: 503 (status `offline`) until the store has formed; then 200 only
  while the online drives reach the write quorum (cmd/erasure.go defaultWQuorum), else 503.

The store forms once every node has been up at the same time (a fresh deployment formats its
drives only with every drive online: cmd/prepare-storage.go shouldInitErasureDisks). A node that
is `down` does not answer at all (its port is closed); one `starting` answers as a server that
has not rejoined the store yet: live with the `offline` status, its drives not counted."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from components.neon.object_storage import write_quorum


class FakeMinioCluster:
    """`nodes` servers of `drives` drives each; `set_down(i)` stops answering on node i."""

    def __init__(self, nodes: int = 3, drives: int = 2) -> None:
        self.drives = drives
        self.down: set[int] = set()
        self.starting: set[int] = set()
        """Nodes up but not back in the store yet: live answers `offline`, drives not counted."""
        self.formed = False
        self.requests: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), self._handler(i)) for i in range(nodes)]
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self._servers]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers]

    def __enter__(self) -> FakeMinioCluster:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def set_down(self, index: int, down: bool = True) -> None:
        with self._lock:
            (self.down.add if down else self.down.discard)(index)

    def form(self) -> None:
        """The first server formats the drives: only with every node up."""
        with self._lock:
            if not self.down:
                self.formed = True

    def _handler(self, index: int) -> type[BaseHTTPRequestHandler]:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                with cluster._lock:
                    cluster.requests.append((index, self.path))
                    if index in cluster.down:
                        # As a stopped server: the connection is dropped without an answer.
                        self.close_connection = True
                        self.connection.close()
                        return
                    away = len(cluster.down | cluster.starting)
                    online = (len(cluster._servers) - away) * cluster.drives
                    total = len(cluster._servers) * cluster.drives
                    formed = cluster.formed and index not in cluster.starting
                headers = {} if formed else {"x-minio-server-status": "offline"}
                if self.path == "/minio/health/live":
                    status = 200
                elif self.path == "/minio/health/cluster":
                    status = 200 if formed and online >= write_quorum(total) else 503
                else:
                    status = 403  # every S3 call is signed; these tests make none
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
