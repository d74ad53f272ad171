"""Qdrant checks through the load balancer: every peer and a leader, consensus working, each
configured collection with its HA parameters and every replica Active, a search over REST and
over gRPC, point counts."""

from __future__ import annotations

import random
from collections.abc import Sequence
from urllib.parse import urlsplit

import grpc
import requests
from qdrant_client import grpc as qdrant_grpc

from components.qdrant.collection import QdrantApiError, QdrantRest, replica_placement, unhealthy_replicas
from components.qdrant.settings import CollectionSettings
from verify.report import Check


def check_qdrant(
    url: str, api_key: str | None, nodes: int, collections: Sequence[CollectionSettings]
) -> list[Check]:
    """Every Qdrant check; an unreachable LB is the one check it reports."""
    api = QdrantRest(url, api_key)
    try:
        cluster = api.result("GET", "/cluster")
    except (requests.RequestException, QdrantApiError) as err:
        return [Check("qdrant.cluster", False, f"GET {url}/cluster: {err}")]
    checks = [_cluster(cluster, nodes)]
    for collection in collections:
        try:
            checks += _collection(api, collection)
        except (requests.RequestException, QdrantApiError) as err:
            checks.append(Check(f"qdrant.collection.{collection.name}", False, str(err)[:200]))
    return checks


def _cluster(info: dict, nodes: int) -> Check:
    peers = len(info.get("peers") or {})
    leader = (info.get("raft_info") or {}).get("leader")
    consensus = (info.get("consensus_thread_status") or {}).get("consensus_thread_status")
    ok = info.get("status") == "enabled" and peers == nodes and leader is not None and consensus == "working"
    return Check("qdrant.cluster", ok, f"{peers}/{nodes} peers, leader {leader}, consensus {consensus}")


def _collection(api: QdrantRest, wanted: CollectionSettings) -> list[Check]:
    name = wanted.name
    status, payload = api.call("GET", f"/collections/{name}")
    if status != 200:
        return [Check(f"qdrant.collection.{name}", False, f"GET /collections/{name} answered {status}")]
    params = payload["result"]["config"]["params"]
    found = {
        key: params.get(key) for key in ("shard_number", "replication_factor", "write_consistency_factor")
    }
    expected = {
        "shard_number": wanted.shard_number,
        "replication_factor": wanted.replication_factor,
        "write_consistency_factor": wanted.write_consistency_factor,
    }
    differ = [
        f"{key} {found[key]} (config {expected[key]})" for key in expected if found[key] != expected[key]
    ]
    checks = [
        Check(
            f"qdrant.collection.{name}",
            not differ,
            "; ".join(differ) or ", ".join(f"{k} {v}" for k, v in found.items()),
        )
    ]
    placement = replica_placement(api.result("GET", f"/collections/{name}/cluster"))
    problems = unhealthy_replicas(placement)
    missing = [shard for shard in range(wanted.shard_number) if shard not in placement]
    if missing:
        problems.append(f"shards {missing} have no replica")
    checks.append(
        Check(f"qdrant.replicas.{name}", not problems, "; ".join(problems) or "every replica Active")
    )
    vector = [random.random() for _ in range(wanted.vector_size)]  # noqa: S311
    status, _ = api.call("POST", f"/collections/{name}/points/search", {"vector": vector, "limit": 3})
    checks.append(Check(f"qdrant.search.{name}", status == 200, f"REST search answered {status}"))
    points = payload["result"].get("points_count")
    checks.append(Check(f"qdrant.points.{name}", points is not None, f"{points} points"))
    return checks


def grpc_search(
    grpc_url: str, api_key: str | None, collection: CollectionSettings, ca_file: str | None = None
) -> Check:
    """A search over gRPC through the LB's gRPC port (`qdrant.Points/Search`, the API key as
    the `api-key` metadata, as Qdrant's clients send it); over TLS for an https:// URL, the
    server checked against `ca_file` (else gRPC's own roots)."""
    parts = urlsplit(grpc_url)
    target = f"{parts.hostname}:{parts.port}"
    request = qdrant_grpc.SearchPoints(
        collection_name=collection.name, vector=[0.5] * collection.vector_size, limit=3
    )
    metadata = [("api-key", api_key)] if api_key else None
    name = f"qdrant.grpc-search.{collection.name}"
    try:
        if parts.scheme == "https":
            roots = open(ca_file, "rb").read() if ca_file else None  # noqa: SIM115 (read at once)
            channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots))
        else:
            channel = grpc.insecure_channel(target)
        with channel:
            reply = qdrant_grpc.PointsStub(channel).Search(request, metadata=metadata, timeout=10)
    except grpc.RpcError as err:
        return Check(name, False, f"{target}: {err.code().name}: {err.details()}")
    return Check(name, True, f"{len(reply.result)} hit(s) over gRPC at {target}")
