"""Stack-wide rules: where the quorum members run."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.common import containers_of, plain

QUORUM_COMPONENTS = {"qdrant": "Qdrant nodes", "neon-safekeeper": "safekeepers"}


def _host_of(resource) -> str:
    provider = resource.provider
    if provider is None:
        return "the default Docker host"
    return plain((provider.props or {}).get("host")) or provider.name


def _spread(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = args.get_config().get("minHosts", 3)
    for component, what in QUORUM_COMPONENTS.items():
        members = containers_of(args.resources, component)
        if not members:
            continue
        hosts = {_host_of(m) for m in members}
        if len(hosts) < min(minimum, len(members)):
            report(
                f"the {len(members)} {what} run on {len(hosts)} Docker host(s); "
                f"spread them over at least {minimum}"
            )


stack_quorum_spread_over_hosts = StackValidationPolicy(
    name="stack-quorum-spread-over-hosts",
    description="Quorum members (Qdrant nodes, safekeepers) run on distinct Docker hosts, "
    "so losing one host keeps a majority.",
    # The plan's single-VPS topology must still deploy, with a warning; make it mandatory in config.
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_spread,
    config_schema=PolicyConfigSchema(
        properties={"minHosts": {"type": "integer", "default": 3, "minimum": 1}}
    ),
)

POLICIES = [stack_quorum_spread_over_hosts]
