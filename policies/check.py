"""python -m policies.check --stack NAME

Runs the program for a stack file under Pulumi's mocks (no passphrase needed: secure values
become placeholders), applies every rule of the pack at the enforcement levels of that stack's
`environment` (policies/config/<environment>.json, the same files `--policy-pack-config` takes),
prints each violation and exits 1 if any is mandatory.

Unlike the CLI, this run sees which inputs are secret (the Python policy SDK drops that marker,
pulumi/pulumi-policy#241), so the rules about plaintext secrets are only complete here.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from policies.pack import POLICIES
from policies.program import PROJECT, ProgramRun, RegisteredResource, run_program, stack_config

CONFIG_DIR = Path(__file__).resolve().parent / "config"
LEVELS = ("advisory", "mandatory", "remediate", "disabled")


@dataclass(frozen=True)
class Violation:
    rule: str
    level: str
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.rule} ({self.resource}): {self.message}"


def policy_settings(environment: str, policy: Any) -> tuple[str, dict[str, Any]]:
    """(enforcement level, config) of `policy` for `environment`, resolved as the CLI does:
    per-policy entry, else `all`, else the policy's own level; schema defaults filled in."""
    config_file = CONFIG_DIR / f"{environment}.json"
    document = json.loads(config_file.read_text())
    level = policy.enforcement_level.value if policy.enforcement_level else "advisory"
    if "all" in document:
        level = document["all"]
    entry = document.get(policy.name)
    values: dict[str, Any] = {}
    if isinstance(entry, str):
        level = entry
    elif isinstance(entry, dict):
        level = entry.get("enforcementLevel", level)
        values = {k: v for k, v in entry.items() if k != "enforcementLevel"}
    schema = policy.config_schema.properties if policy.config_schema else {}
    config = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    config.update(values)
    if "secretsVisible" in schema:
        config["secretsVisible"] = True  # this run keeps Pulumi's secret markers
    if level not in LEVELS:
        raise ValueError(
            f"{config_file}: {policy.name} has enforcement level {level!r}; allowed: {', '.join(LEVELS)}"
        )
    return level, config


_OPTIONS = PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [])


def _urn(stack: str, resource: RegisteredResource) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{resource.typ}::{resource.name}"


def _providers(run: ProgramRun, stack: str) -> dict[str, PolicyProviderResource]:
    return {
        r.name: PolicyProviderResource(r.typ, r.inputs, _urn(stack, r), r.name)
        for r in run.resources
        if r.typ.startswith("pulumi:providers:")
    }


def _provider_of(resource: RegisteredResource, providers: dict[str, PolicyProviderResource]):
    # Mock provider references are "<provider urn>::<provider id>"; the name ends the urn.
    if not resource.provider:
        return None
    return providers.get(resource.provider.split("::")[-2])


def evaluate(
    run: ProgramRun, stack: str, environment: str, policies: list[Any] = POLICIES
) -> list[Violation]:
    """Every violation of `policies` by the resources of `run`."""
    providers = _providers(run, stack)
    resources = [r for r in run.resources if r.typ != "pulumi:pulumi:Stack"]
    policy_resources = [
        PolicyResource(
            r.typ, r.inputs, _urn(stack, r), r.name, _OPTIONS, _provider_of(r, providers), None, [], {}
        )
        for r in resources
    ]
    violations: list[Violation] = []
    for policy in policies:
        level, config = policy_settings(environment, policy)
        if level == "disabled":
            continue

        def report(
            message: str, urn: str | None = None, _policy=policy, _level=level, _default="stack"
        ) -> None:
            target = urn.split("::")[-1] if urn else _default
            violations.append(Violation(_policy.name, _level, target, message))

        if isinstance(policy, ResourceValidationPolicy):
            for resource, as_policy in zip(resources, policy_resources, strict=True):
                args = ResourceValidationArgs(
                    resource.typ,
                    resource.inputs,
                    as_policy.urn,
                    resource.name,
                    _OPTIONS,
                    as_policy.provider,
                    config,
                )
                _call(policy, args, lambda m, u=None, n=resource.name, r=report: r(m, u, _default=n))
        else:
            _call(policy, StackValidationArgs(policy_resources, config), report)
    return violations


def _call(policy: Any, args: Any, report: Any) -> None:
    validations = policy.validate if isinstance(policy.validate, list) else [policy.validate]
    for validate in validations:
        try:
            validate(args, report)
        except Exception as err:
            if type(err).__name__ == "_NotApplicableError":  # args.not_applicable(...)
                return
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m policies.check", description=__doc__.split("\n\n")[1])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    try:
        values, _ = stack_config(args.stack)
        environment = values.get(f"{PROJECT}:environment", "dev")
        run = run_program(args.stack)
        violations = evaluate(run, args.stack, environment)
    except FileNotFoundError as err:
        print(f"policies.check: {err.strerror}: {err.filename}", file=sys.stderr)
        return 2
    except ValueError as err:  # SettingsError and bad policy config
        print(f"policies.check: {err}", file=sys.stderr)
        return 2
    for violation in sorted(violations, key=lambda v: (v.level != "mandatory", v.rule, v.resource)):
        print(violation)
    mandatory = [v for v in violations if v.level == "mandatory"]
    print(
        f"policies.check: stack {args.stack} ({environment}): {len(mandatory)} mandatory, "
        f"{len(violations) - len(mandatory)} advisory violation(s) of {len(POLICIES)} rules",
        file=sys.stderr,
    )
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
