"""SafekeeperReady: after each rollout of a safekeeper, wait until it is back in its quorum.

The safekeepers are separate Swarm services chained safekeeper 0 -> gate 0 -> safekeeper 1 ->
…, so `pulumi up` restarts them one at a time, and the next is not touched until this gate has
seen its member:

- answer `GET /v1/status` with its own node id (the API starts after the member has loaded its
  timelines from disk; safekeeper/src/http/routes.rs status_handler);
- after a rollout (an update of the gate), hold every timeline of the tenant that a peer holds,
  flushed at least up to the commit LSN the peers reported just before (`GET
  /v1/tenant/{t}/timeline/{tl}`: `flush_lsn`, `commit_lsn`; a timeline it does not hold is a
  404), and see every other member answer. The walproposer reconnects by itself and streams
  what the member missed; only once it has, and no other member is down, may the next member
  go: a majority then always holds every committed record.

A new member (the gate's create: the stack's first `pulumi up`, or a quorum grown from 1 to 3)
holds no timeline yet and gets it from the compute once the compute's config names it, which
comes later in the same update; so a create checks the status only.

The provider holds no state: each call gets every safekeeper's API URL (OperatorAccess's
forwards on the first host) and the tenant's timeline ids as inputs.
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
"""Longer than a safekeeper's restart with its timelines to load, plus the walproposer's
reconnect and catch-up."""
REQUEST_TIMEOUT_S = 5.0


class SafekeeperGateError(RuntimeError):
    """The member did not come back in time, or came back as another member."""


def parse_lsn(text: str) -> int:
    """`0/16B5A50` (Postgres notation, as the safekeeper's API prints an LSN) as an integer."""
    high, _, low = str(text).partition("/")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise SafekeeperGateError(f"unreadable LSN {text!r} from a safekeeper") from None


def _get(url: str) -> tuple[int, Any]:
    response = requests.get(url, timeout=REQUEST_TIMEOUT_S)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def member_state(
    urls: Sequence[str], index: int, node_id: int, tenant_id: str, timeline_ids: Sequence[str], catch_up: bool
) -> tuple[bool, str]:
    """(ready, what was seen) for safekeeper `index` of `urls`."""
    own = urls[index].rstrip("/")
    try:
        status, body = _get(f"{own}/v1/status")
    except requests.RequestException as err:
        return False, f"safekeeper {index} does not answer yet ({type(err).__name__})"
    if status != 200:
        return False, f"safekeeper {index} answers {status} on /v1/status"
    if not isinstance(body, Mapping) or body.get("id") != node_id:
        # Waiting will not fix that: its port leads to another member, or its data dir holds
        # another id (safekeeper.id is written on first start).
        seen = body.get("id") if isinstance(body, Mapping) else body
        raise SafekeeperGateError(f"safekeeper {index} at {own} reports node id {seen!r}, expected {node_id}")
    if not catch_up:
        return True, f"safekeeper {index} (node {node_id}) answers"
    behind = []
    for timeline in timeline_ids:
        path = f"/v1/tenant/{tenant_id}/timeline/{timeline}"
        # The peers first: the member's flush LSN, read after, must reach what they had committed.
        committed = []
        for peer, url in enumerate(urls):
            if peer == index:
                continue
            try:
                peer_status, peer_body = _get(url.rstrip("/") + path)
            except requests.RequestException:
                continue  # a peer down has nothing to compare against
            if peer_status == 200:
                committed.append(parse_lsn(peer_body["commit_lsn"]))
        if not committed:
            continue  # no peer holds it (nothing written yet): nothing to catch up on
        try:
            mine_status, mine = _get(own + path)
        except requests.RequestException as err:
            return False, f"safekeeper {index} stopped answering ({type(err).__name__})"
        if mine_status == 404:
            behind.append(f"timeline {timeline} missing (its peers hold it)")
            continue
        if mine_status != 200:
            behind.append(f"timeline {timeline}: {mine_status}")
            continue
        flushed, needed = parse_lsn(mine["flush_lsn"]), max(committed)
        if flushed < needed:
            behind.append(f"timeline {timeline} flushed to {mine['flush_lsn']}, peers committed {needed:X}")
    if behind:
        return False, f"safekeeper {index} is behind: " + "; ".join(behind)
    # The next rollout stops one more member: only with every other one up does a majority stay.
    for peer, url in enumerate(urls):
        if peer == index:
            continue
        try:
            answer = _get(url.rstrip("/") + "/v1/status")[0]
        except requests.RequestException as err:
            answer = type(err).__name__
        if answer != 200:
            return False, (
                f"safekeeper {peer} does not answer ({answer}): stopping the next one would leave "
                "the quorum without a majority"
            )
    return True, f"safekeeper {index} (node {node_id}) answers with every timeline caught up"


class SafekeeperReadyProvider(ResourceProvider):
    """Waits for one member; nothing to delete (the member's service goes with its own resource)."""

    def _wait(self, props: Mapping[str, Any], catch_up: bool) -> dict[str, Any]:
        timelines = sorted((props.get("timeline_ids") or {}).values())
        seen = wait_for(
            lambda: member_state(
                props["urls"],
                int(props["index"]),
                int(props["node_id"]),
                props["tenant_id"],
                timelines,
                catch_up,
            ),
            f"safekeeper {props['index']} to be back in its quorum",
            float(props["timeout"]),
            float(props.get("interval", 2.0)),
            SafekeeperGateError,
        )
        return {**props, "seen": seen}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"safekeeper-{props['node_id']}", outs=self._wait(props, catch_up=False))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("urls", "index", "node_id", "revision") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._wait(news, catch_up=True))


@dataclass(frozen=True)
class SafekeeperReadyArgs:
    """Which member, after which revision of its service, and which timelines it must hold."""

    urls: Sequence[str]
    """Every safekeeper's API, as reached from where `pulumi up` runs."""
    index: int
    node_id: int
    tenant_id: pulumi.Input[str]
    timeline_ids: pulumi.Input[Mapping[str, str]]
    revision: pulumi.Input[str]
    timeout: float = READY_TIMEOUT_S


class SafekeeperReady(pulumi.dynamic.Resource, module="neon", name="SafekeeperReady"):
    """Done once safekeeper `index` is back in its quorum; rerun after every rollout of it."""

    seen: pulumi.Output[str]

    def __init__(self, name: str, args: SafekeeperReadyArgs, opts: pulumi.ResourceOptions | None = None):
        props = {
            "urls": list(args.urls),
            "index": args.index,
            "node_id": args.node_id,
            "tenant_id": args.tenant_id,
            "timeline_ids": args.timeline_ids,
            "revision": args.revision,
            "timeout": args.timeout,
            "seen": None,
        }
        super().__init__(SafekeeperReadyProvider(), name, props, opts)
