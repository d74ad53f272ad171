"""QdrantCollection: a dynamic resource that creates a collection on a formed cluster.

The provider holds no state of its own: every operation receives the LB URL and API key as
(secret) inputs and opens its HTTP session inside the call, so it pickles by reference and
survives the SDK's serialization. The module has no side effects at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import requests
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from components.platform.tls import ca_bundle_file

# Parameters Qdrant fixes at creation: a change means a new collection.
IMMUTABLE = ("name", "vector_size", "distance", "shard_number")
# Parameters PATCH /collections/{name} can change in place.
MUTABLE = ("replication_factor", "write_consistency_factor")
# Replica states that serve reads (facts/qdrant.md §2.3); anything else is not yet healthy.
HEALTHY_STATES = {"Active"}
# Creating a collection waits up to 10 s for consensus and 10 s more for every peer to apply it
# (qdrant lib/storage/src/dispatcher.rs, CONSENSUS_META_OP_WAIT): the client waits longer.
CREATE_TIMEOUT_S = 60.0
IMMUTABLE_CHANGE = (
    "Qdrant fixes it when the collection is created, and replacing the collection would drop "
    "every point. The safe path: add a collection under a new name with the new parameters to "
    "qdrant.collections, copy the points (python -m migration.qdrant --source <qdrantUrl> --target "
    "<qdrantUrl> --collection {old} --target-collection <new>), switch the application to the new "
    "name, then remove the old entry (with deleteWithPoints: true once it may go)"
)


class QdrantApiError(RuntimeError):
    """Qdrant answered with an error or never reached the wanted state."""


@dataclass
class QdrantRest:
    """A tiny REST client of the cluster (through its LB); created inside each call, never stored
    on a provider."""

    base_url: str
    api_key: str | None
    timeout: float = 10.0
    ca_certificate: str | None = None
    """PEM the LB's TLS certificate is checked against (besides the system's CAs)."""

    def __post_init__(self) -> None:
        self.session = requests.Session()
        # Passed with each request: a session's `verify` loses to REQUESTS_CA_BUNDLE when that
        # is set (requests merges the environment into the request's own settings first).
        self.verify = ca_bundle_file(self.ca_certificate)
        if self.api_key:
            self.session.headers["api-key"] = self.api_key

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> tuple[int, Any]:
        response = self.session.request(
            method,
            f"{self.base_url.rstrip('/')}{path}",
            json=body,
            timeout=timeout or self.timeout,
            verify=self.verify,
        )
        try:
            payload = response.json()
        except ValueError:
            payload = {"status": {"error": response.text[:200]}}
        if response.status_code in (401, 403):
            raise QdrantApiError(f"{method} {path}: the API key was refused ({response.status_code})")
        return response.status_code, payload

    def result(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        status, payload = self.call(method, path, body, timeout)
        if status >= 300:
            error = payload.get("status", {}).get("error") if isinstance(payload, dict) else payload
            raise QdrantApiError(f"{method} {path} answered {status}: {error}")
        return payload.get("result")


def poll_until(what: str, timeout: float, interval: float, probe: Callable[[], tuple[bool, Any]]) -> Any:
    """Call `probe()` until it returns (done, value) with done true; fail after `timeout`.

    A refused or failing request counts as "not yet" (the node may be restarting); a refused API
    key fails at once: waiting will not fix it.
    """

    def attempt() -> tuple[bool, Any]:
        try:
            return probe()
        except (requests.RequestException, QdrantApiError) as err:
            if isinstance(err, QdrantApiError) and "API key" in str(err):
                raise
            return False, str(err)

    retrying = Retrying(
        retry=retry_if_result(lambda outcome: not outcome[0]),
        wait=wait_fixed(interval),
        stop=stop_after_delay(timeout),
    )
    try:
        return retrying(attempt)[1]
    except RetryError as err:
        last = err.last_attempt.result()[1]
        raise QdrantApiError(f"timed out after {timeout:.0f}s waiting for {what}: {last}") from None


def wait_for_cluster(api: QdrantRest, expected_peers: int, timeout: float, interval: float = 1.0) -> dict:
    """Wait until GET /cluster shows every peer and a leader (facts/qdrant.md §1.4, §8)."""

    def probe():
        info = api.result("GET", "/cluster")
        peers = info.get("peers") or {}
        leader = (info.get("raft_info") or {}).get("leader")
        thread = (info.get("consensus_thread_status") or {}).get("consensus_thread_status")
        if info.get("status") != "enabled":
            return False, "cluster mode is not enabled on this node"
        if len(peers) >= expected_peers and leader is not None and thread in (None, "working"):
            return True, info
        return False, f"{len(peers)}/{expected_peers} peers, leader={leader}, consensus={thread}"

    return poll_until(f"{expected_peers} Qdrant peers and a leader", timeout, interval, probe)


def replica_placement(cluster_info: Mapping[str, Any]) -> dict[int, dict[int, str]]:
    """{shard_id: {peer_id: state}} from one node's GET /collections/{name}/cluster."""
    placement: dict[int, dict[int, str]] = {}
    own_peer = cluster_info["peer_id"]
    for shard in cluster_info.get("local_shards") or []:
        placement.setdefault(shard["shard_id"], {})[own_peer] = shard["state"]
    for shard in cluster_info.get("remote_shards") or []:
        placement.setdefault(shard["shard_id"], {})[shard["peer_id"]] = shard["state"]
    return placement


def unhealthy_replicas(placement: Mapping[int, Mapping[int, str]]) -> list[str]:
    return [
        f"shard {shard} on peer {peer} is {state}"
        for shard, replicas in sorted(placement.items())
        for peer, state in sorted(replicas.items())
        if state not in HEALTHY_STATES
    ]


def wait_for_replicas(
    api: QdrantRest, name: str, shard_number: int, timeout: float, interval: float = 1.0
) -> dict:
    """Wait until every replica of every shard is Active; name the ones that are not."""

    def probe():
        info = api.result("GET", f"/collections/{name}/cluster")
        placement = replica_placement(info)
        problems = unhealthy_replicas(placement)
        missing = [s for s in range(shard_number) if s not in placement]
        if missing:
            problems.append(f"shards {missing} have no replica yet")
        if info.get("shard_transfers"):
            problems.append(f"{len(info['shard_transfers'])} shard transfer(s) in progress")
        return (not problems), (info if not problems else "; ".join(problems))

    try:
        return poll_until(f"every replica of {name!r} to be Active", timeout, interval, probe)
    except QdrantApiError as err:
        raise QdrantApiError(f"collection {name!r} is not healthy: {err}") from None


def _existing_params(api: QdrantRest, name: str) -> dict | None:
    status, payload = api.call("GET", f"/collections/{name}")
    if status == 404:
        return None
    if status >= 300:
        raise QdrantApiError(f"GET /collections/{name} answered {status}: {payload}")
    return payload["result"]["config"]["params"]


def _mismatches(params: Mapping[str, Any], props: Mapping[str, Any]) -> list[str]:
    vectors = params.get("vectors") or {}
    found = {
        "vector_size": vectors.get("size"),
        "distance": vectors.get("distance"),
        "shard_number": params.get("shard_number"),
    }
    return [
        f"{key} is {found[key]!r}, config wants {props[key]!r}"
        for key in ("vector_size", "distance", "shard_number")
        if found[key] != props[key]
    ]


class QdrantCollectionProvider(ResourceProvider):
    """Creates, checks and (on delete) removes one collection through the cluster's LB."""

    def _api(self, props: Mapping[str, Any]) -> QdrantRest:
        return QdrantRest(
            props["url"], props.get("api_key") or None, ca_certificate=props.get("ca_certificate")
        )

    def _outputs(self, props: Mapping[str, Any], api: QdrantRest) -> dict[str, Any]:
        info = wait_for_replicas(
            api, props["name"], int(props["shard_number"]), float(props["replica_timeout"])
        )
        placement = replica_placement(info)
        under = [
            shard for shard, replicas in placement.items() if len(replicas) < int(props["replication_factor"])
        ]
        if under:
            # Self-hosted Qdrant does not add replicas when the factor grows; say what to do.
            pulumi.log.warn(
                f"collection {props['name']!r}: shards {sorted(under)} have fewer than "
                f"{props['replication_factor']} replicas; add them with POST "
                f'/collections/{props["name"]}/cluster {{"replicate_shard": ...}}'
            )
        return {
            **props,
            "shard_count": info["shard_count"],
            "replicas": {str(shard): sorted(peers) for shard, peers in sorted(placement.items())},
            "under_replicated_shards": sorted(under),
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        api = self._api(props)
        wait_for_cluster(api, int(props["expected_peers"]), float(props["cluster_timeout"]))
        existing = _existing_params(api, props["name"])
        if existing is None:
            api.result(
                "PUT",
                f"/collections/{props['name']}",
                {
                    "vectors": {"size": int(props["vector_size"]), "distance": props["distance"]},
                    "shard_number": int(props["shard_number"]),
                    "replication_factor": int(props["replication_factor"]),
                    "write_consistency_factor": int(props["write_consistency_factor"]),
                },
                timeout=CREATE_TIMEOUT_S,
            )
        else:
            # Adopt an identical collection (a re-run after a lost state); never overwrite data.
            problems = _mismatches(existing, props)
            if problems:
                raise QdrantApiError(
                    f"collection {props['name']!r} already exists with other parameters "
                    f"({'; '.join(problems)}); refusing to touch it"
                )
            self._patch_mutable(api, props)
        return CreateResult(id_=props["name"], outs=self._outputs(props, api))

    def _patch_mutable(self, api: QdrantRest, props: Mapping[str, Any]) -> None:
        api.result(
            "PATCH",
            f"/collections/{props['name']}",
            {"params": {key: int(props[key]) for key in MUTABLE}},
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        fixed = [key for key in IMMUTABLE if olds.get(key) != news.get(key)]
        if fixed:
            # Refused at preview: never a silent drop-and-recreate of a collection with data.
            found = ", ".join(f"{key} {olds.get(key)!r} -> {news.get(key)!r}" for key in fixed)
            raise QdrantApiError(
                f"collection {olds.get('name')!r}: {found} cannot change in place. "
                + IMMUTABLE_CHANGE.format(old=olds.get("name"))
            )
        watched = (*MUTABLE, "url", "api_key", "expected_peers", "delete_with_points")
        changed = [key for key in watched if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[], stables=["name"])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        api = self._api(news)
        for key in MUTABLE:
            if olds.get(key) != news.get(key):
                pulumi.log.info(f"collection {news['name']!r}: {key} {olds.get(key)} -> {news.get(key)}")
        self._patch_mutable(api, news)
        return UpdateResult(outs=self._outputs(news, api))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        api = self._api(props)
        status, info = api.call("GET", f"/collections/{props['name']}")
        points = (info.get("result") or {}).get("points_count") if status == 200 else 0
        if points and not props.get("delete_with_points"):
            raise QdrantApiError(
                f"collection {props['name']!r} holds {points} points; refusing to delete it. To delete it "
                "on purpose, set deleteWithPoints: true on its qdrant.collections entry, run pulumi up, "
                "then remove the entry"
            )
        status, payload = api.call("DELETE", f"/collections/{props['name']}")
        if status >= 300 and status != 404:
            raise QdrantApiError(f"DELETE /collections/{props['name']} answered {status}: {payload}")


@dataclass(frozen=True)
class QdrantCollectionArgs:
    """Inputs of one collection."""

    url: pulumi.Input[str]
    """The cluster's REST endpoint as reachable from where `pulumi up` runs."""
    api_key: pulumi.Input[str]
    name: str
    vector_size: int
    distance: str
    shard_number: int
    replication_factor: int
    write_consistency_factor: int
    expected_peers: int
    delete_with_points: bool = False
    """Opt-in: without it, deleting the resource refuses to drop a collection that holds points."""
    ca_certificate: pulumi.Input[str] | None = None
    """The LB's TLS certificate chain, when `url` is https with the stack's own certificate."""
    cluster_timeout: float = 300.0
    replica_timeout: float = 300.0


class QdrantCollection(pulumi.dynamic.Resource, module="qdrant", name="Collection"):
    """A Qdrant collection with HA parameters, created once the Raft cluster has formed."""

    shard_count: pulumi.Output[int]
    replicas: pulumi.Output[dict]
    under_replicated_shards: pulumi.Output[list]

    def __init__(self, name: str, args: QdrantCollectionArgs, opts: pulumi.ResourceOptions | None = None):
        props = {
            "url": args.url,
            "api_key": pulumi.Output.secret(args.api_key),
            "name": args.name,
            "vector_size": args.vector_size,
            "distance": args.distance,
            "shard_number": args.shard_number,
            "replication_factor": args.replication_factor,
            "write_consistency_factor": args.write_consistency_factor,
            "expected_peers": args.expected_peers,
            "delete_with_points": args.delete_with_points,
            "cluster_timeout": args.cluster_timeout,
            "replica_timeout": args.replica_timeout,
            # Only with TLS: a plaintext stack's inputs stay as they were (no diff).
            **({"ca_certificate": args.ca_certificate} if args.ca_certificate is not None else {}),
            "shard_count": None,
            "replicas": None,
            "under_replicated_shards": None,
        }
        super().__init__(QdrantCollectionProvider(), name, props, opts)
