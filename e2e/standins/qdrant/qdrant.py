#!/usr/bin/python3
"""Stand-in for one Qdrant node in cluster mode (v1.19).

`--uri` names this peer, `--bootstrap` the peer it joins; a node whose URI is its bootstrap
URI starts the cluster (Qdrant >= 1.13.3). Cluster mode must be on
(QDRANT__CLUSTER__ENABLED=true), else --bootstrap is meaningless. A follower that cannot
reach its bootstrap peer exits, as the real one does; its restart policy retries.

The first node holds the cluster's state (tests/support/fake_qdrant.py, as strict as the
fake's docstring says); the others answer /readyz and /healthz themselves and pass every
other REST request to it, so through the LB every node answers for the same cluster. Each
node's gRPC port answers `qdrant.Qdrant/HealthCheck`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events

sys.path.insert(0, "/opt/standin")
from standin import die, forever

from tests.support.fake_qdrant import FakeQdrantCluster

REST_PORT, GRPC_PORT = 6333, 6334
VERSION = "1.19.0"


def health_reply() -> bytes:
    # HealthCheckReply {string title = 1; string version = 2;} in protobuf's wire format.
    def field(number: int, text: str) -> bytes:
        data = text.encode()
        return bytes([number << 3 | 2, len(data)]) + data

    return field(1, "qdrant - vector search engine") + field(2, VERSION)


def _grpc_message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload  # uncompressed, length-prefixed


def _grpc_connection(sock: socket.socket) -> None:
    """One HTTP/2 (h2c) connection: HealthCheck answered, any other method UNIMPLEMENTED (12)."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    sock.sendall(connection.data_to_send())
    paths: dict[int, str] = {}
    with sock:
        while data := sock.recv(65536):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {
                        bytes(k).decode() if not isinstance(k, str) else k: v for k, v in event.headers
                    }
                    path = headers.get(":path", "")
                    paths[event.stream_id] = path.decode() if isinstance(path, bytes) else path
                elif isinstance(event, h2.events.DataReceived):
                    connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    stream = event.stream_id
                    connection.send_headers(
                        stream, [(":status", "200"), ("content-type", "application/grpc")]
                    )
                    if paths.pop(stream, "") == "/qdrant.Qdrant/HealthCheck":
                        connection.send_data(stream, _grpc_message(health_reply()))
                        trailers = [("grpc-status", "0")]
                    else:
                        trailers = [("grpc-status", "12"), ("grpc-message", "unknown method")]
                    connection.send_headers(stream, trailers, end_stream=True)
            sock.sendall(connection.data_to_send())


def serve_grpc() -> None:
    server = socket.create_server(("0.0.0.0", GRPC_PORT))

    def accept() -> None:
        while True:
            sock, _ = server.accept()
            threading.Thread(target=_grpc_connection, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(prog="qdrant")
    parser.add_argument("--uri")
    parser.add_argument("--bootstrap")
    args = parser.parse_args()
    if os.environ.get("QDRANT__CLUSTER__ENABLED") != "true":
        die("cluster mode is disabled: --uri/--bootstrap need QDRANT__CLUSTER__ENABLED=true")
    p2p_port = int(os.environ.get("QDRANT__CLUSTER__P2P__PORT", "6335"))
    api_key = os.environ.get("QDRANT__SERVICE__API_KEY") or die("no API key configured")
    uri, bootstrap = urlsplit(args.uri), urlsplit(args.bootstrap or args.uri)
    if uri.port != p2p_port or bootstrap.port != p2p_port:
        die(f"--uri and --bootstrap must name the P2P port {p2p_port}")
    leader = uri.hostname == bootstrap.hostname
    try:  # the real node keeps its Raft state in ./storage (config/config.yaml storage_path)
        with open("storage/raft_state.json", "w") as state:
            json.dump({"this_peer_uri": args.uri, "bootstrap": args.bootstrap}, state)
    except OSError as err:
        die(f"cannot write ./storage/raft_state.json: {err}")

    if leader:

        class Cluster(FakeQdrantCluster):
            bind = ("0.0.0.0", REST_PORT)

            def handle(self, method, path, body, headers):
                if path in ("/readyz", "/healthz", "/livez") and method == "GET":
                    return 200, {"title": "qdrant", "version": VERSION}
                return super().handle(method, path, body, headers)

        cluster = Cluster(api_key=api_key, peers_joined=1).__enter__()

        class Join(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_POST(self) -> None:
                with cluster.state:
                    cluster.peers_joined = min(cluster.peers_joined + 1, 3)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("0.0.0.0", p2p_port), Join)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    else:
        try:
            join = urllib.request.Request(
                f"http://{bootstrap.hostname}:{p2p_port}/join", data=b"{}", method="POST"
            )
            urllib.request.urlopen(join, timeout=5).read()
        except OSError as err:
            die(f"failed to bootstrap from {args.bootstrap}: {err}")
        proxy_rest(bootstrap.hostname)
    serve_grpc()
    forever()


def proxy_rest(leader_host: str) -> None:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.path in ("/readyz", "/healthz", "/livez"):
                return self._send(200, json.dumps({"title": "qdrant", "version": VERSION}).encode())
            connection = http.client.HTTPConnection(leader_host, REST_PORT, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("api-key", "content-type")}
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                self._send(answer.status, answer.read())
            except OSError:
                self._send(503, b'{"status": {"error": "Service unavailable"}, "time": 0.0}')
            finally:
                connection.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route  # noqa: N815

    server = ThreadingHTTPServer(("0.0.0.0", REST_PORT), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()


if __name__ == "__main__":
    main()
