"""NeonTenant: a tenant registered with the storage controller (not the pageserver directly:
on every pageserver start the controller re-attaches only the tenants it knows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.neon.api import NeonApi, NeonApiError


def _config_body(props: dict[str, Any]) -> dict[str, Any]:
    return {"pitr_interval": props["pitr_interval"]}


class NeonTenantProvider(ResourceProvider):
    """POST /v1/tenant; PUT /v1/tenant/config on changes; DELETE polled until 404."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        api = NeonApi(props["controller_url"], deadline_s=float(props["timeout"]))
        tenant_id = props["tenant_id"]
        # The controller answers 201 for a tenant id it already has (idempotent create) and then
        # keeps the existing config, so the config is always set explicitly afterwards.
        status, payload = api.request(
            "POST", "/v1/tenant", {"new_tenant_id": tenant_id, **_config_body(props)}
        )
        if status not in (200, 201):
            raise NeonApiError(f"creating tenant {tenant_id} answered {status}: {payload}", status)
        api.expect("PUT", "/v1/tenant/config", {"tenant_id": tenant_id, **_config_body(props)})
        return CreateResult(id_=tenant_id, outs=dict(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ("tenant_id",) if olds.get(k) != news.get(k)]
        changed = [k for k in ("tenant_id", "pitr_interval", "controller_url") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        if olds.get("pitr_interval") != news.get("pitr_interval"):
            api = NeonApi(news["controller_url"], deadline_s=float(news["timeout"]))
            api.expect("PUT", "/v1/tenant/config", {"tenant_id": news["tenant_id"], **_config_body(news)})
        return UpdateResult(outs=dict(news))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        api = NeonApi(props["controller_url"], deadline_s=float(props["timeout"]))
        path = f"/v1/tenant/{props['tenant_id']}"
        status, payload = api.request("DELETE", path)
        if status not in (200, 202, 404):
            raise NeonApiError(f"DELETE {path} answered {status}: {payload}", status)
        api.wait_until_gone(path, f"tenant {props['tenant_id']}")


@dataclass(frozen=True)
class NeonTenantArgs:
    """Inputs of the tenant."""

    controller_url: pulumi.Input[str]
    """The storage controller as reachable from where `pulumi up` runs."""
    tenant_id: pulumi.Input[str]
    """32 lowercase hex characters."""
    pitr_interval: str
    """How far back branches and point-in-time restores can reach (humantime, e.g. "30 days")."""
    timeout: float = 300.0


class NeonTenant(pulumi.dynamic.Resource, module="neon", name="Tenant"):
    """One Neon tenant (the database cluster); its timelines are the branches."""

    tenant_id: pulumi.Output[str]

    def __init__(self, name: str, args: NeonTenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            NeonTenantProvider(),
            name,
            {
                "controller_url": args.controller_url,
                "tenant_id": args.tenant_id,
                "pitr_interval": args.pitr_interval,
                "timeout": args.timeout,
            },
            opts,
        )
