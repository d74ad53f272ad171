"""Stack-wide rules: where the quorum members run, and whether the stack has hosts enough for
a quorum to outlive one of them."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.common import containers_of, pinned_host, stack_hosts

QUORUM_COMPONENTS = {"qdrant": "Qdrant nodes", "neon-safekeeper": "safekeepers"}


def _spread(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = args.get_config().get("minHosts", 3)
    if len(stack_hosts(args.resources)) < minimum:
        return  # nowhere to spread to: stack-hosts-for-a-quorum says so
    for component, what in QUORUM_COMPONENTS.items():
        members = containers_of(args.resources, component)
        if not members:
            continue
        hosts = {pinned_host(m) for m in members}
        if None in hosts:
            report(f"{what} must each be pinned to a host (a service's rag-infra.host.<index> constraint)")
        elif len(hosts) < min(minimum, len(members)):
            report(
                f"the {len(members)} {what} run on {len(hosts)} Docker host(s); "
                f"spread them over at least {minimum}"
            )


def _enough_hosts(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = args.get_config().get("minHosts", 3)
    hosts = stack_hosts(args.resources)
    quorums = [
        f"{len(members)} {what}"
        for component, what in QUORUM_COMPONENTS.items()
        if len(members := containers_of(args.resources, component)) >= minimum
    ]
    if quorums and len(hosts) < minimum:
        report(
            f"the stack runs on {len(hosts)} Docker host(s): losing one stops the "
            f"{' and the '.join(quorums)}; give it at least {minimum}"
        )


_MIN_HOSTS = PolicyConfigSchema(properties={"minHosts": {"type": "integer", "default": 3, "minimum": 1}})

stack_quorum_spread_over_hosts = StackValidationPolicy(
    name="stack-quorum-spread-over-hosts",
    description="On a stack with hosts enough, quorum members (Qdrant nodes, safekeepers) run "
    "on distinct Docker hosts, so losing one host keeps a majority.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_spread,
    config_schema=_MIN_HOSTS,
)

stack_hosts_for_a_quorum = StackValidationPolicy(
    name="stack-hosts-for-a-quorum",
    description="A stack with quorums has at least minHosts Docker hosts (one host lost, one member lost).",
    # The plan's single-VPS topology must still deploy, with a warning.
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_enough_hosts,
    config_schema=_MIN_HOSTS,
)

POLICIES = [stack_quorum_spread_over_hosts, stack_hosts_for_a_quorum]
