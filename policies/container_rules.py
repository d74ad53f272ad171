"""Rules for every container and Swarm service: restart policy, health check, memory limit,
pinned image, and no secret-looking environment value in plaintext."""

from __future__ import annotations

import re

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policies.common import (
    REMOTE_IMAGE,
    WORKLOADS,
    env_value,
    envs,
    healthcheck_tests,
    image_of,
    image_pinned,
    is_secret,
    memory_limited,
    plain,
    restarts,
    restarts_never,
)

SECRET_NAME = r"PASSWORD|SECRET|TOKEN|(^|_)KEY($|_)|API_KEY|ACCESS_KEY"


def _containers_only(args: ResourceValidationArgs) -> str | None:
    """The container's or service's name, or None for anything else (one-shot jobs are host
    commands, components/platform/jobs.py, not containers)."""
    if args.resource_type not in WORKLOADS:
        return None
    return plain(args.props.get("name")) or args.name


def _restart(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = _containers_only(args)
    if name is None:
        return
    if restarts_never(args.props):
        report(
            f"container {name} has restart policy {restarts(args.props)!r}; "
            "use always, unless-stopped or on-failure (a service: any or on-failure)"
        )


container_restart_policy_set = ResourceValidationPolicy(
    name="container-restart-policy-set",
    description="Every long-running container restarts on its own after a crash or a host reboot.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_restart,
)


def _healthcheck(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = _containers_only(args)
    if name is None:
        return
    tests = healthcheck_tests(args.props)
    if not tests or tests[0] == "NONE":
        report(f"container {name} has no health check")


container_has_healthcheck = ResourceValidationPolicy(
    name="container-has-healthcheck",
    description="Every long-running container has a health check Docker can act on.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_healthcheck,
)


def _memory(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = _containers_only(args)
    if name is None:
        return
    if not memory_limited(args.props):
        report(f"container {name} has no memory limit")


container_memory_limit = ResourceValidationPolicy(
    name="container-memory-limit",
    description="Every long-running container has a memory limit, so one service cannot starve the host.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_memory,
)


def _pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == REMOTE_IMAGE:
        ref = plain(args.props.get("name")) or ""
    elif args.resource_type in WORKLOADS:
        ref = image_of(args.props)
        if ref.startswith("sha256:"):
            return  # an image id from a pulled RemoteImage, checked there
    else:
        return
    if not image_pinned(ref):
        report(f"image {ref!r} is not pinned to a release tag or digest")


container_image_pinned = ResourceValidationPolicy(
    name="container-image-pinned",
    description="Every image is pinned by a release tag or a digest, never `latest` or no tag.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_pinned,
)


def _plaintext_secret_env(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in WORKLOADS:
        return
    if not args.get_config().get("secretsVisible", False):
        # The Python policy SDK removes the secret marker before validation
        # (pulumi/pulumi-policy#241), so under the CLI every value looks plaintext.
        args.not_applicable("secretness is not visible to Python policies; run python -m policies.check")
    if is_secret(env_value(args.props)):
        return
    pattern = re.compile(args.get_config().get("secretNamePattern", SECRET_NAME))
    name = plain(args.props.get("name")) or args.name
    for entry in envs(args.props):
        key, _, value = entry.partition("=")
        if value and pattern.search(key) and not key.endswith("_FILE"):
            report(f"container {name} sets {key} in plaintext; pass it from a Pulumi secret")


container_no_plaintext_secret_env = ResourceValidationPolicy(
    name="container-no-plaintext-secret-env",
    description="No container gets a password, key, secret or token in a plaintext environment variable.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_plaintext_secret_env,
    config_schema=PolicyConfigSchema(
        properties={
            "secretNamePattern": {"type": "string", "default": SECRET_NAME},
            "secretsVisible": {"type": "boolean", "default": False},
        }
    ),
)

POLICIES = [
    container_restart_policy_set,
    container_has_healthcheck,
    container_memory_limit,
    container_image_pinned,
    container_no_plaintext_secret_env,
]
