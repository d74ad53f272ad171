"""Rules for Swarm services: a rollout that fails rolls itself back and `pulumi up` sees it, and
a member that holds a volume never runs twice on it."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.common import SERVICE, plain, volume_mounts


def _name(args: ResourceValidationArgs) -> str:
    return plain(args.props.get("name")) or args.name


def _rolls_back(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE:
        return
    update = plain(args.props.get("updateConfig")) or {}
    if update.get("failureAction") != "rollback":
        # Swarm's default is `pause`: a broken rollout stays half done, and pulumi up succeeds.
        report(
            f"service {_name(args)} has failure_action {update.get('failureAction') or 'pause'!r}; "
            "use rollback, so a failed rollout undoes itself"
        )
    if not plain(args.props.get("convergeConfig")):
        # Without it the provider neither waits for the tasks nor reports a rollback.
        report(
            f"service {_name(args)} has no converge_config: pulumi up would not wait for it or see a rollback"
        )


service_rolls_back_on_failure = ResourceValidationPolicy(
    name="service-rolls-back-on-failure",
    description="Every Swarm service rolls a failed update back by itself, and pulumi up waits for "
    "it to converge (so a rollback fails the deploy).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_rolls_back,
)


def _stateful_stops_first(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE or not volume_mounts(args.props):
        return
    order = (plain(args.props.get("updateConfig")) or {}).get("order") or "stop-first"
    if order != "stop-first":
        report(
            f"service {_name(args)} mounts a named volume and updates {order}: the new task would run "
            "beside the old one on the same data; use stop-first"
        )


service_with_volume_stops_first = ResourceValidationPolicy(
    name="service-with-volume-stops-first",
    description="A Swarm service that mounts a named volume stops its old task before starting the "
    "new one: two processes never share a member's data.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_stateful_stops_first,
)

POLICIES = [service_rolls_back_on_failure, service_with_volume_stops_first]
