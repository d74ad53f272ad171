"""QdrantMemberReady: after each rollout of a Qdrant node, wait until it is back in the cluster.

The nodes are separate Swarm services chained node 0 -> gate 0 -> node 1 -> gate 1 -> …, so
`pulumi up` replaces them one at a time: the next node's service is not touched until this
gate has seen the node's peer in `GET /cluster` with a working consensus, and every replica it
holds `Active` in `GET /collections/{name}/cluster` (a node that restarted comes back
`Partial`/`Recovery` until it has caught up: taking the next node down before then could leave
a shard with no Active replica). The gate takes the service's `revision` as an input, so it runs
again after every change of the service, and the peer's URI, so it knows which peer is its node.

Like QdrantCollection, the provider holds no state: every call gets the LB URL and the API key
as (secret) inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.qdrant.collection import QdrantRest, poll_until, replica_placement, unhealthy_replicas

READY_TIMEOUT_S = 300.0
"""Longer than a node's start-up with a large collection to load (its /readyz start period)."""


def _peer_id(cluster: Mapping[str, Any], uri: str) -> int | None:
    for peer_id, peer in (cluster.get("peers") or {}).items():
        if str(peer.get("uri", "")).rstrip("/") == uri.rstrip("/"):
            return int(peer_id)
    return None


def member_state(api: QdrantRest, uri: str) -> tuple[bool, str]:
    """(ready, what was seen) for the peer at `uri`: joined, consensus working, its replicas Active."""
    cluster = api.result("GET", "/cluster")
    peer = _peer_id(cluster, uri)
    if peer is None:
        return False, f"no peer at {uri} in the cluster yet"
    consensus = (cluster.get("consensus_thread_status") or {}).get("consensus_thread_status")
    if consensus not in (None, "working"):
        return False, f"consensus is {consensus}"
    if (cluster.get("raft_info") or {}).get("leader") is None:
        return False, "the cluster has no leader"
    problems = []
    for collection in api.result("GET", "/collections").get("collections") or []:
        name = collection["name"]
        placement = replica_placement(api.result("GET", f"/collections/{name}/cluster"))
        mine = {shard: {peer: states[peer]} for shard, states in placement.items() if peer in states}
        problems += [f"{name}: {p}" for p in unhealthy_replicas(mine)]
    if problems:
        return False, "; ".join(problems)
    return True, f"peer {peer} at {uri} is in the cluster with every replica Active"


class QdrantMemberReadyProvider(ResourceProvider):
    """Waits for one node; nothing to delete (the node's service goes with its own resource)."""

    def _wait(self, props: Mapping[str, Any]) -> dict[str, Any]:
        api = QdrantRest(
            props["url"], props.get("api_key") or None, ca_certificate=props.get("ca_certificate")
        )
        seen = poll_until(
            f"Qdrant node {props['peer_uri']} back in the cluster",
            float(props["timeout"]),
            float(props.get("interval", 2.0)),
            lambda: member_state(api, props["peer_uri"]),
        )
        return {**props, "seen": seen}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"member-{props['peer_uri']}", outs=self._wait(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("url", "peer_uri", "revision") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._wait(news))


@dataclass(frozen=True)
class QdrantMemberReadyArgs:
    """Which node, after which revision of its service, through which endpoint."""

    url: pulumi.Input[str]
    api_key: pulumi.Input[str]
    peer_uri: str
    revision: pulumi.Input[str]
    timeout: float = READY_TIMEOUT_S
    ca_certificate: pulumi.Input[str] | None = None
    """The LB's TLS certificate chain, when `url` is https with the stack's own certificate."""


class QdrantMemberReady(pulumi.dynamic.Resource, module="qdrant", name="MemberReady"):
    """Done once node `peer_uri` is back in its quorum; rerun after every rollout of it."""

    seen: pulumi.Output[str]

    def __init__(self, name: str, args: QdrantMemberReadyArgs, opts: pulumi.ResourceOptions | None = None):
        props = {
            "url": args.url,
            "api_key": pulumi.Output.secret(args.api_key),
            "peer_uri": args.peer_uri,
            "revision": args.revision,
            "timeout": args.timeout,
            **({"ca_certificate": args.ca_certificate} if args.ca_certificate is not None else {}),
            "seen": None,
        }
        super().__init__(QdrantMemberReadyProvider(), name, props, opts)
