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

from components.neon.api import NeonApi, NeonApiError

# Everything that defines where a timeline starts: a change is a new timeline.
IDENTITY = (
    "tenant_id",
    "timeline_id",
    "ancestor_timeline_id",
    "ancestor_start_lsn",
    "ancestor_timestamp",
    "pg_version",
)


def rfc3339_utc(timestamp: str) -> str:
    """The pageserver parses timestamps with humantime's RFC 3339 reader: UTC with a `Z`."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


def resolve_timestamp(api: NeonApi, tenant_id: str, ancestor: str, timestamp: str) -> str:
    """The LSN of `ancestor` at `timestamp`."""
    when = quote(rfc3339_utc(timestamp))
    path = f"/v1/tenant/{tenant_id}/timeline/{ancestor}/get_lsn_by_timestamp?timestamp={when}"
    answer = api.expect("GET", path)
    kind = answer.get("kind")
    if kind in ("past", "present"):
        return answer["lsn"]
    if kind == "future":
        raise NeonApiError(f"timestamp {timestamp} is in the future of timeline {ancestor}")
    raise NeonApiError(
        f"timeline {ancestor} has no data at {timestamp} (before its start, or older than the "
        f"tenant's pitr_interval): kind={kind!r}"
    )


def _body(props: dict[str, Any], start_lsn: str | None) -> dict[str, Any]:
    if not props.get("ancestor_timeline_id"):
        return {"new_timeline_id": props["timeline_id"], "pg_version": int(props["pg_version"])}
    body = {"new_timeline_id": props["timeline_id"], "ancestor_timeline_id": props["ancestor_timeline_id"]}
    if start_lsn:
        body["ancestor_start_lsn"] = start_lsn
    return body


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
            # Pin "now" to an explicit LSN: without one the pageserver uses the ancestor's moving
            # last_record_lsn as the idempotency key, and a retried create would conflict.
            start_lsn = api.expect("GET", f"/v1/tenant/{tenant}/timeline/{ancestor}")["last_record_lsn"]
        status, info = api.request("POST", f"/v1/tenant/{tenant}/timeline", _body(props, start_lsn))
        if status == 409:
            raise NeonApiError(
                f"timeline {timeline} already exists in tenant {tenant} with other parameters; "
                "refusing to touch it",
                status,
            )
        if status == 406:
            raise NeonApiError(f"timeline {timeline} cannot be created: {info.get('msg', info)}", status)
        if status not in (200, 201):
            raise NeonApiError(f"creating timeline {timeline} answered {status}: {info}", status)
        outs = {
            **props,
            "resolved_start_lsn": start_lsn or info.get("ancestor_lsn"),
            "last_record_lsn": info.get("last_record_lsn"),
        }
        return CreateResult(id_=timeline, outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in IDENTITY if olds.get(k) != news.get(k)]
        changed = replaces + [k for k in ("controller_url", "name") if olds.get(k) != news.get(k)]
        # The same timeline id cannot exist twice in a tenant.
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
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
            if status == 412:
                raise NeonApiError(
                    f"timeline {props['timeline_id']} has child branches: delete them first", status
                )
            if status not in (202, 409):
                raise NeonApiError(f"DELETE {path} answered {status}: {payload}", status)
            if time.monotonic() > deadline:
                raise NeonApiError(
                    f"timeline {props['timeline_id']} was still being deleted after the timeout"
                )
            time.sleep(api.backoff_s)
        api.wait_until_gone(path, f"timeline {props['timeline_id']}")


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
                "timeout": args.timeout,
                "resolved_start_lsn": None,
                "last_record_lsn": None,
            },
            opts,
        )
