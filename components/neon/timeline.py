"""NeonTimeline: the main timeline of a tenant, or a branch (a timeline with an ancestor).

A branch may start at an LSN or at a timestamp; a timestamp is resolved to an LSN with the
pageserver's get_lsn_by_timestamp (through the controller's passthrough). That is how a
point-in-time restore is declared.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.neon.api import NeonApi, NeonApiError, message, pageserver_status

# Everything that defines where a branch starts: a change is a new timeline, with a new id
# (NeonDatabase draws the id with these as keepers). A branch inherits its ancestor's Postgres
# version (the pageserver ignores `pg_version` on a branch), so that is not part of it.
BRANCH_IDENTITY = (
    "tenant_id",
    "timeline_id",
    "ancestor_timeline_id",
    "ancestor_start_lsn",
    "ancestor_timestamp",
)
# `main` holds the data: it is never replaced by a config change.
MAIN_IDENTITY = ("tenant_id", "timeline_id", "pg_version", "ancestor_timeline_id")
MAIN_IS_KEPT = (
    "the main timeline holds the database and is never deleted by a config change. "
    "To move to another Postgres major version, deploy a new stack (or tenant) with the new "
    "neon.pgVersion, copy the data over (python -m migration.postgres --source <old> --target "
    "<new>), switch the application, then retire the old one"
)


def rfc3339_utc(timestamp: str) -> str:
    """The pageserver parses timestamps with humantime's RFC 3339 reader: UTC with a `Z`."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def resolve_timestamp(api: NeonApi, tenant_id: str, ancestor: str, timestamp: str) -> str:
    """The LSN of `ancestor` at `timestamp` (a point-in-time restore).

    The pageserver answers `past` (older than what it retains) and `nodata` (no commit at all)
    with the oldest readable LSN, not the one asked for: both are refused, naming the oldest
    restorable point. `future` (after the last commit) is the latest LSN, which is what a
    branch at that time would see (pageserver/src/pgdatadir_mapping.rs find_lsn_for_timestamp).
    """
    timeline = f"/v1/tenant/{tenant_id}/timeline/{ancestor}"
    answer = api.expect("GET", f"{timeline}/get_lsn_by_timestamp?timestamp={quote(rfc3339_utc(timestamp))}")
    kind, lsn = answer.get("kind"), answer.get("lsn")
    if kind == "present":
        return lsn
    if kind == "future":
        pulumi.log.info(f"{timestamp} is after the last commit of timeline {ancestor}: branching at {lsn}")
        return lsn
    status, when = api.request("GET", f"{timeline}/get_timestamp_of_lsn?lsn={lsn}")
    oldest = f"LSN {lsn}" + (f" ({when})" if status == 200 else "")
    why = "is older than what it retains" if kind == "past" else f"finds no commit ({kind})"
    raise NeonApiError(
        f"cannot restore timeline {ancestor} to {timestamp}: the timestamp {why}; the oldest "
        f"restorable point is {oldest}. Use a later timestamp, or raise neon.pitrRetention for the future"
    )


def _body(props: dict[str, Any], start_lsn: str | None) -> dict[str, Any]:
    if not props.get("ancestor_timeline_id"):
        return {"new_timeline_id": props["timeline_id"], "pg_version": int(props["pg_version"])}
    body = {"new_timeline_id": props["timeline_id"], "ancestor_timeline_id": props["ancestor_timeline_id"]}
    if start_lsn:
        body["ancestor_start_lsn"] = start_lsn
    return body


def _create_error(tenant: str, timeline: str, start_lsn: str | None, status: int, info: Any) -> NeonApiError:
    """Name what the pageserver refused; the controller wraps most of it in a 409."""
    inner = pageserver_status(status, info)
    if inner == 409:
        return NeonApiError(
            f"timeline {timeline} already exists in tenant {tenant} with other parameters; "
            "refusing to touch it",
            status,
        )
    if inner == 406:
        return NeonApiError(
            f"timeline {timeline} cannot start at LSN {start_lsn}: {message(info)} (an LSN must lie between "
            "the ancestor's oldest readable LSN and its last record LSN)",
            status,
        )
    return NeonApiError(f"creating timeline {timeline} answered {status}: {message(info)}", status)


class NeonTimelineProvider(ResourceProvider):
    """POST /v1/tenant/{id}/timeline; identical re-creates are 201; deletion polled to 404."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        api = NeonApi(props["controller_url"], deadline_s=float(props["timeout"]))
        tenant, timeline = props["tenant_id"], props["timeline_id"]
        start_lsn = props.get("ancestor_start_lsn") or None
        ancestor = props.get("ancestor_timeline_id")
        if ancestor and props.get("ancestor_timestamp"):
            start_lsn = resolve_timestamp(api, tenant, ancestor, props["ancestor_timestamp"])
        elif ancestor and not start_lsn:
            # A retried create (after a lost state or a crash) finds the branch already there:
            # adopt it. Its ancestor's LSN has moved on since, so a new POST would conflict.
            status, existing = api.request("GET", f"/v1/tenant/{tenant}/timeline/{timeline}")
            if status == 200 and existing.get("ancestor_timeline_id") == ancestor:
                outs = {
                    **props,
                    "resolved_start_lsn": existing.get("ancestor_lsn"),
                    "last_record_lsn": existing.get("last_record_lsn"),
                }
                return CreateResult(id_=timeline, outs=outs)
            # Pin "now" to an explicit LSN: without one the pageserver uses the ancestor's moving
            # last_record_lsn as the idempotency key, and a retried create would conflict.
            start_lsn = api.expect("GET", f"/v1/tenant/{tenant}/timeline/{ancestor}")["last_record_lsn"]
        status, info = api.request("POST", f"/v1/tenant/{tenant}/timeline", _body(props, start_lsn))
        if status not in (200, 201):
            raise _create_error(tenant, timeline, start_lsn, status, info)
        outs = {
            **props,
            "resolved_start_lsn": start_lsn or info.get("ancestor_lsn"),
            "last_record_lsn": info.get("last_record_lsn"),
        }
        return CreateResult(id_=timeline, outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if not olds.get("ancestor_timeline_id"):
            _refuse_replacing_main(olds, news)
            replaces = []
        else:
            replaces = [k for k in BRANCH_IDENTITY if olds.get(k) != news.get(k)]
        updates = ("controller_url", "name", "safekeeper_urls")
        changed = replaces + [k for k in updates if olds.get(k) != news.get(k)]
        # A new incarnation has a new id: it is created before the old one is deleted. Only a
        # replacement under the same id (never planned by NeonDatabase) must delete first.
        same_id = olds.get("timeline_id") == news.get("timeline_id")
        return DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=bool(replaces) and same_id
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if not olds.get("ancestor_timeline_id"):
            _refuse_replacing_main(olds, news)
        keep = {k: olds.get(k) for k in ("resolved_start_lsn", "last_record_lsn")}
        return UpdateResult(outs={**news, **keep})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        api = NeonApi(props["controller_url"], deadline_s=float(props["timeout"]))
        path = f"/v1/tenant/{props['tenant_id']}/timeline/{props['timeline_id']}"
        deadline = time.monotonic() + float(props["timeout"])
        while True:
            # The controller polls the pageserver itself for ~25 s: 200 when the deletion is
            # done, 409 while it is still running; 202 is the pageserver's own "accepted".
            status, payload = api.request("DELETE", path)
            if status in (200, 404):
                break
            if status == 412 or "child timelines" in message(payload):
                # The pageserver's 412 arrives through the controller as a 500.
                raise NeonApiError(
                    f"timeline {props['timeline_id']} has child branches: delete them first "
                    f"({message(payload)})",
                    status,
                )
            if status not in (202, 409):
                raise NeonApiError(f"DELETE {path} answered {status}: {payload}", status)
            if time.monotonic() > deadline:
                raise NeonApiError(
                    f"timeline {props['timeline_id']} was still being deleted after the timeout"
                )
            time.sleep(api.backoff_s)
        api.wait_until_gone(path, f"timeline {props['timeline_id']}")
        # Without --timelines-onto-safekeepers the controller never tells the safekeepers
        # (storage_controller/src/service/safekeeper_service.rs): delete there too. A safekeeper
        # answers 200 whether it had the timeline or not, and keeps a tombstone for 24 h
        # (safekeeper/src/http/routes.rs timeline_delete_handler).
        for url in props.get("safekeeper_urls") or []:
            safekeeper = NeonApi(url, deadline_s=float(props["timeout"]))
            try:
                safekeeper.expect(
                    "DELETE", f"/v1/tenant/{props['tenant_id']}/timeline/{props['timeline_id']}"
                )
            except NeonApiError as err:
                raise NeonApiError(
                    f"timeline {props['timeline_id']} is gone from the pageserver but not from the "
                    f"safekeeper at {url}: {err}"
                ) from None


def _refuse_replacing_main(olds: dict[str, Any], news: dict[str, Any]) -> None:
    changed = [k for k in MAIN_IDENTITY if olds.get(k) != news.get(k)]
    if changed:
        found = ", ".join(f"{k} {olds.get(k)!r} -> {news.get(k)!r}" for k in changed)
        raise NeonApiError(f"refusing to replace the main timeline ({found}): {MAIN_IS_KEPT}")


@dataclass(frozen=True)
class NeonTimelineArgs:
    """Inputs of a timeline; `ancestor_timeline_id` makes it a branch."""

    controller_url: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    timeline_id: pulumi.Input[str]
    name: str
    pg_version: int
    ancestor_timeline_id: pulumi.Input[str] | None = None
    ancestor_start_lsn: str | None = None
    ancestor_timestamp: str | None = None
    safekeeper_urls: tuple[str, ...] = ()
    """Each safekeeper's HTTP API, as reachable from where `pulumi up` runs (for deletion)."""
    timeout: float = 300.0


class NeonTimeline(pulumi.dynamic.Resource, module="neon", name="Timeline"):
    """A Neon timeline: `main`, or a named branch off another timeline."""

    timeline_id: pulumi.Output[str]
    resolved_start_lsn: pulumi.Output[str]
    last_record_lsn: pulumi.Output[str]

    def __init__(self, name: str, args: NeonTimelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            NeonTimelineProvider(),
            name,
            {
                "controller_url": args.controller_url,
                "tenant_id": args.tenant_id,
                "timeline_id": args.timeline_id,
                "name": args.name,
                "pg_version": args.pg_version,
                "ancestor_timeline_id": args.ancestor_timeline_id,
                "ancestor_start_lsn": args.ancestor_start_lsn,
                "ancestor_timestamp": args.ancestor_timestamp,
                "safekeeper_urls": list(args.safekeeper_urls),
                "timeout": args.timeout,
                "resolved_start_lsn": None,
                "last_record_lsn": None,
            },
            opts,
        )
