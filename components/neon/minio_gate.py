"""MinioReady: after each rollout of a MinIO node, wait until it is back in the store.

The nodes are separate Swarm services chained node 0 -> gate 0 -> node 1 -> …, so `pulumi up`
restarts them one at a time. Health endpoints answer without credentials
(cmd/healthcheck-handler.go):

- `/minio/health/live` is 200 as soon as the server's HTTP listener is up, also while it waits
  for its peers; the header `x-minio-server-status: offline` says the store has not formed yet
  (`mc ping` counts such a node as offline).
- `/minio/health/cluster` is 200 only once the store is initialised and every erasure set has
  a write quorum of drives online.

A create (a new node, the stack's first `pulumi up`) waits for `live` only: a fresh store
formats its drives once every node is up, so node 0 cannot be whole before node 1 exists. An
update (after a rollout) waits until the node reports a write quorum and every other node is
online: the next rollout takes one more node away, which a store already short of one may not
survive.

The provider holds no state: each call gets every node's API URL (OperatorAccess's forwards on
the first host) as input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import requests
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.platform.waiting import wait_for

READY_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 5.0
STATUS_HEADER = "x-minio-server-status"


class MinioGateError(RuntimeError):
    """The node did not come back in time."""


def health(url: str, path: str = "", timeout: float = REQUEST_TIMEOUT_S) -> tuple[int | str, str]:
    """(status or error name, server status header) of one health endpoint: `url` + `path`."""
    try:
        response = requests.get(url.rstrip("/") + path, timeout=timeout)
    except requests.RequestException as err:
        return type(err).__name__, ""
    return response.status_code, response.headers.get(STATUS_HEADER, "")


def node_state(urls: Sequence[str], index: int, rejoined: bool) -> tuple[bool, str]:
    """(ready, what was seen) for node `index` of `urls`."""
    status, server = health(urls[index], "/minio/health/live")
    if status != 200:
        return False, f"MinIO node {index} does not answer yet ({status})"
    if not rejoined:
        return True, f"MinIO node {index} answers"
    status, server = health(urls[index], "/minio/health/cluster")
    if status != 200:
        seen = f"{status}, {server}" if server else status
        return False, f"MinIO node {index} sees no write quorum yet ({seen})"
    for peer, url in enumerate(urls):
        if peer == index:
            continue
        status, server = health(url, "/minio/health/live")
        if status != 200 or server == "offline":
            seen = server if status == 200 else status
            return False, (
                f"MinIO node {peer} is not online ({seen}): rolling the next node now could leave "
                "the store without a write quorum"
            )
    return True, f"MinIO node {index} is back with a write quorum, every node online"


class MinioReadyProvider(ResourceProvider):
    """Waits for one node; nothing to delete (the node's service goes with its own resource)."""

    def _wait(self, props: Mapping[str, Any], rejoined: bool) -> dict[str, Any]:
        seen = wait_for(
            lambda: node_state(props["urls"], int(props["index"]), rejoined),
            f"MinIO node {props['index']} to be back in the store",
            float(props["timeout"]),
            float(props.get("interval", 2.0)),
            MinioGateError,
        )
        return {**props, "seen": seen}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"minio-{props['index']}", outs=self._wait(props, rejoined=False))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("urls", "index", "revision") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._wait(news, rejoined=True))


@dataclass(frozen=True)
class MinioReadyArgs:
    """Which node, after which revision of its service."""

    urls: Sequence[str]
    """Every node's S3 API, as reached from where `pulumi up` runs."""
    index: int
    revision: pulumi.Input[str]
    timeout: float = READY_TIMEOUT_S


class MinioReady(pulumi.dynamic.Resource, module="neon", name="MinioReady"):
    """Done once MinIO node `index` is back in the store; rerun after every rollout of it."""

    seen: pulumi.Output[str]

    def __init__(self, name: str, args: MinioReadyArgs, opts: pulumi.ResourceOptions | None = None):
        props = {
            "urls": list(args.urls),
            "index": args.index,
            "revision": args.revision,
            "timeout": args.timeout,
            "seen": None,
        }
        super().__init__(MinioReadyProvider(), name, props, opts)
