#!/usr/bin/python3
"""Stand-in for one Qdrant node in cluster mode (v1.19).

`--uri` names this peer, `--bootstrap` the peer it joins; a node whose URI is its bootstrap
URI starts the cluster (Qdrant >= 1.13.3). Cluster mode must be on
(QDRANT__CLUSTER__ENABLED=true), else --bootstrap is meaningless. A follower that cannot
reach its bootstrap peer exits, as the real one does; its restart policy retries.

The first node holds the cluster's state (tests/support/fake_qdrant.py, as strict as the
fake's docstring says); the others answer /readyz and /healthz themselves and pass every
other REST request to it, so through the LB every node answers for the same cluster. A
follower heartbeats to the first node's P2P port; one that falls silent (its container
stopped) is a dead peer, its replicas `Dead`, until it is back. Each node's gRPC port answers
`qdrant.Qdrant/HealthCheck`.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import yaml

sys.path.insert(0, "/opt/standin")
from standin import die, forever

from tests.support.fake_qdrant import PEER_IDS, FakeQdrantCluster

REST_PORT, GRPC_PORT = 6333, 6334
VERSION = "1.19.0"
HEARTBEAT_S, DEAD_AFTER_S = 1.0, 3.0


def health_reply() -> bytes:
    # HealthCheckReply {string title = 1; string version = 2;} in protobuf's wire format.
    def field(number: int, text: str) -> bytes:
        data = text.encode()
        return bytes([number << 3 | 2, len(data)]) + data

    return field(1, "qdrant - vector search engine") + field(2, VERSION)


def _grpc_message(payload: bytes) -> bytes:
    return b"\x00" + len(payload).to_bytes(4, "big") + payload  # uncompressed, length-prefixed


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _fields(data: bytes):
    """(field number, wire type, value) of a protobuf message, in order."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            value, at = data[at : at + size], at + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, at = data[at : at + size], at + size
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def _submessage(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def search_request(message: bytes) -> tuple[str, list[float], int]:
    """SearchPoints {collection_name = 1; repeated float vector = 2 [packed]; limit = 4} (points.proto)."""
    name, vector, limit = "", [], 10
    for number, wire, value in _fields(message):
        if number == 1:
            name = value.decode()
        elif number == 2:
            vector += (
                struct.unpack(f"<{len(value) // 4}f", value) if wire == 2 else struct.unpack("<f", value)
            )
        elif number == 4:
            limit = value
    return name, vector, limit


def search_reply(hits: list[dict]) -> bytes:
    """SearchResponse {repeated ScoredPoint result = 1; double time = 2}; ScoredPoint {PointId id = 1;
    float score = 3}; PointId {uint64 num = 1 | string uuid = 2}."""
    out = b""
    for hit in hits:
        ident = hit["id"]
        point_id = (
            _encode_varint(1 << 3) + _encode_varint(ident)
            if isinstance(ident, int)
            else _submessage(2, str(ident).encode())
        )
        scored = _submessage(1, point_id) + _encode_varint(3 << 3 | 5) + struct.pack("<f", hit["score"])
        out += _submessage(1, scored)
    return out + _encode_varint(2 << 3 | 1) + struct.pack("<d", 0.001)


# Qdrant's tonic layer maps its errors onto gRPC codes (lib/storage/src/content_manager/errors.rs).
GRPC_CODES = {400: "3", 422: "3", 401: "16", 403: "7", 404: "5"}


def _search(message: bytes, api_key: str) -> tuple[bytes | None, list[tuple[str, str]]]:
    """qdrant.Points/Search answered from the REST API of this node (so from the cluster)."""
    name, vector, limit = search_request(message[5:])
    body = json.dumps({"vector": vector, "limit": limit}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", REST_PORT, timeout=30)
    try:
        connection.request("POST", f"/collections/{name}/points/search", body=body,
                           headers={"api-key": api_key, "content-type": "application/json"})  # fmt: skip
        answer = connection.getresponse()
        payload = json.loads(answer.read())
    except OSError as err:
        return None, [("grpc-status", "14"), ("grpc-message", str(err))]
    finally:
        connection.close()
    if answer.status != 200:
        error = (payload.get("status") or {}).get("error", "error")
        return None, [("grpc-status", GRPC_CODES.get(answer.status, "13")), ("grpc-message", error)]
    return search_reply(payload["result"]), [("grpc-status", "0")]


def _grpc_connection(sock: socket.socket) -> None:
    """One HTTP/2 (h2c) connection: HealthCheck and Points/Search answered, any other method
    UNIMPLEMENTED (12)."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    sock.sendall(connection.data_to_send())
    requests: dict[int, dict] = {}
    with sock:
        while data := sock.recv(65536):
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    headers = {
                        (k.decode() if isinstance(k, bytes) else k): (
                            v.decode() if isinstance(v, bytes) else v
                        )
                        for k, v in event.headers
                    }
                    requests[event.stream_id] = {"headers": headers, "body": b""}
                elif isinstance(event, h2.events.DataReceived):
                    requests[event.stream_id]["body"] += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    stream = event.stream_id
                    request = requests.pop(stream)
                    path = request["headers"].get(":path", "")
                    connection.send_headers(
                        stream, [(":status", "200"), ("content-type", "application/grpc")]
                    )
                    reply, trailers = None, [("grpc-status", "12"), ("grpc-message", "unknown method")]
                    if path == "/qdrant.Qdrant/HealthCheck":
                        reply, trailers = health_reply(), [("grpc-status", "0")]
                    elif path == "/qdrant.Points/Search":
                        reply, trailers = _search(request["body"], request["headers"].get("api-key", ""))
                    if reply is not None:
                        connection.send_data(stream, _grpc_message(reply))
                    connection.send_headers(stream, trailers, end_stream=True)
            sock.sendall(connection.data_to_send())


def serve_grpc() -> None:
    server = socket.create_server(("0.0.0.0", GRPC_PORT))

    def accept() -> None:
        while True:
            sock, _ = server.accept()
            threading.Thread(target=_grpc_connection, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def _configured_key(path: str | None) -> str | None:
    """`service.api_key` from --config-path, read as qdrant src/settings.rs does: an optional
    file whose format comes from its extension (only yaml/yml are compiled in); a missing or
    other file is skipped with an error line, and the node runs with the other layers."""
    if not path:
        return None
    if not path.endswith((".yaml", ".yml")) or not os.path.isfile(path):
        print(f"ERROR Config file via --config-path is not found or not YAML: {path}", file=sys.stderr)
        return None
    with open(path) as file:
        return ((yaml.safe_load(file) or {}).get("service") or {}).get("api_key")


def main() -> None:
    parser = argparse.ArgumentParser(prog="qdrant")
    parser.add_argument("--uri")
    parser.add_argument("--bootstrap")
    parser.add_argument("--config-path")
    args = parser.parse_args()
    if os.environ.get("QDRANT__CLUSTER__ENABLED") != "true":
        die("cluster mode is disabled: --uri/--bootstrap need QDRANT__CLUSTER__ENABLED=true")
    p2p_port = int(os.environ.get("QDRANT__CLUSTER__P2P__PORT", "6335"))
    api_key = (
        os.environ.get("QDRANT__SERVICE__API_KEY")
        or _configured_key(args.config_path)
        or die("no API key configured")
    )
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
        serve_p2p(cluster, p2p_port)
    else:
        message = json.dumps({"uri": args.uri}).encode()
        try:
            p2p(bootstrap.hostname, p2p_port, "join", message)
        except OSError as err:
            die(f"failed to bootstrap from {args.bootstrap}: {err}")
        threading.Thread(target=heartbeat, args=(bootstrap.hostname, p2p_port, message), daemon=True).start()
        proxy_rest(bootstrap.hostname)
    serve_grpc()
    forever()


def p2p(host: str, port: int, what: str, message: bytes) -> None:
    request = urllib.request.Request(f"http://{host}:{port}/{what}", data=message, method="POST")
    urllib.request.urlopen(request, timeout=5).read()


def heartbeat(host: str, port: int, message: bytes) -> None:
    """Raft traffic, as the leader sees it: a follower that stops sending is a dead peer."""
    while True:
        time.sleep(HEARTBEAT_S)
        with contextlib.suppress(OSError):  # the leader is away; keep trying, as Raft does
            p2p(host, port, "heartbeat", message)


def serve_p2p(cluster: FakeQdrantCluster, port: int) -> None:
    """The leader's P2P port: peers join by URI (a peer keeps its id across restarts, as the
    real one keeps it in ./storage) and send heartbeats; one silent for DEAD_AFTER_S is dead,
    its replicas `Dead` until it is heard again (fake_qdrant's dead_peers)."""
    peers: dict[str, int] = {}
    heard: dict[int, float] = {}

    class P2P(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with cluster.state:
                index = peers.setdefault(body["uri"], len(peers) + 1)
                if index >= len(PEER_IDS):
                    self.send_response(409)
                else:
                    cluster.peers_joined = max(cluster.peers_joined, index + 1)
                    heard[PEER_IDS[index]] = time.monotonic()
                    cluster.dead_peers.discard(PEER_IDS[index])
                    self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            with cluster.state:
                now = time.monotonic()
                cluster.dead_peers = {peer for peer, at in heard.items() if now - at > DEAD_AFTER_S}

    server = ThreadingHTTPServer(("0.0.0.0", port), P2P)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    threading.Thread(target=watch, daemon=True).start()


def proxy_rest(leader_host: str) -> None:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.path in ("/readyz", "/healthz", "/livez"):
                return self._send(200, json.dumps({"title": "qdrant", "version": VERSION}).encode())
            connection = http.client.HTTPConnection(leader_host, REST_PORT, timeout=30)
            # The key comes as `api-key` or as a bearer token (Prometheus sends the latter).
            forwarded = ("api-key", "authorization", "content-type")
            headers = {k: v for k, v in self.headers.items() if k.lower() in forwarded}
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                kind = answer.getheader("Content-Type") or "application/json"
                self._send(answer.status, answer.read(), kind)
            except OSError:
                self._send(503, b'{"status": {"error": "Service unavailable"}, "time": 0.0}')
            finally:
                connection.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _route  # noqa: N815

    server = ThreadingHTTPServer(("0.0.0.0", REST_PORT), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()


if __name__ == "__main__":
    main()
