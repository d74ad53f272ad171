"""Neon HA rules: the safekeeper quorum, durable storage, the compute's view of the quorum and
the storage tier's ports."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.neon.object_storage import minio_drive_paths, write_quorum, writes_survive_losing_any_host
from policies.common import (
    WORKLOADS,
    aliases,
    component,
    container_spec,
    containers_of,
    file_text,
    is_service,
    label_of,
    number,
    pinned_host,
    plain,
    port_ip,
    published_ports,
    short_of_odd_quorum,
    stack_hosts,
    volume_mounts,
)

# Components whose data must survive a container, and where it lives.
DURABLE = {
    "neon-pageserver": "/data",
    "neon-safekeeper": "/data",
    "neon-controller-db": "/var/lib/postgresql/data",
    "neon-object-storage": "/data",  # or /data0, /data1…: one volume per drive
}
STORAGE_TIER = (
    "neon-pageserver",
    "neon-safekeeper",
    "neon-controller-db",
    "neon-object-storage",
    "neon-storage-controller",
    "neon-storage-broker",
    "neon-compute-notify",
)
COMPUTE_CONFIG = "/var/db/postgres/configs/config.json"


def _safekeeper_quorum(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = args.get_config().get("minSafekeepers", 3)
    safekeepers = containers_of(args.resources, "neon-safekeeper")
    if not safekeepers:
        args.not_applicable("no Neon tier in this stack")
    if short_of_odd_quorum(len(safekeepers), minimum):
        report(
            f"Neon has {len(safekeepers)} safekeepers; "
            f"the WAL quorum needs an odd number of at least {minimum}"
        )


neon_safekeepers_odd_at_least_3 = StackValidationPolicy(
    name="neon-safekeepers-odd-at-least-3",
    description="Neon's WAL is acknowledged by a majority of an odd number of safekeepers, at least three.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_safekeeper_quorum,
    config_schema=PolicyConfigSchema(
        properties={"minSafekeepers": {"type": "integer", "default": 3, "minimum": 1}}
    ),
)


def _arguments(props: Mapping[str, Any]) -> list[str]:
    """A service's arguments after its entrypoint, a container's command."""
    line = container_spec(props).get("args") if is_service(props) else plain(props.get("command"))
    return list(line or [])


def _durable(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in WORKLOADS or component(args.props) not in DURABLE:
        return
    path = DURABLE[component(args.props)]
    binds = [v for v in plain(args.props.get("volumes")) or [] if v.get("hostPath")]
    mounted = {target for _, target in volume_mounts(args.props)} | {v.get("containerPath") for v in binds}
    if component(args.props) == "neon-object-storage":
        # Every drive its command line names (`server /data`, `server http://minio-{0...2}:9000/data{0...1}`).
        unmounted = [p for p in minio_drive_paths(_arguments(args.props)) if p not in mounted]
        if unmounted:
            report(
                f"neon-object-storage {plain(args.props.get('name'))} keeps {', '.join(unmounted)} "
                "outside a persistent volume"
            )
        return
    if path not in mounted:
        report(
            f"{component(args.props)} {plain(args.props.get('name'))} keeps {path} "
            "outside a persistent volume"
        )


neon_storage_on_persistent_volumes = ResourceValidationPolicy(
    name="neon-storage-on-persistent-volumes",
    description="Pageserver, safekeepers, the controller's database and object storage keep "
    "their data on volumes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_durable,
)


def _compute_names_every_safekeeper(args: StackValidationArgs, report: ReportViolation) -> None:
    safekeepers = {
        alias
        for member in containers_of(args.resources, "neon-safekeeper")
        for alias in aliases(member.props)
    }
    computes = containers_of(args.resources, "neon-compute")
    if not computes:
        args.not_applicable("no Neon compute in this stack")
    for compute in computes:
        config = file_text(args.resources, compute, COMPUTE_CONFIG)
        try:
            named = {c.split(":")[0] for c in json.loads(config)["spec"]["safekeeper_connstrings"]}
        except (TypeError, ValueError, KeyError):
            report(f"compute {label_of(compute)} has no readable spec at {COMPUTE_CONFIG}", compute.urn)
            continue
        missing = sorted(safekeepers - named)
        if missing:
            report(f"compute {label_of(compute)} does not name safekeepers {', '.join(missing)}", compute.urn)


neon_compute_names_every_safekeeper = StackValidationPolicy(
    name="neon-compute-names-every-safekeeper",
    description="Every compute streams its WAL to every safekeeper of the stack.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_compute_names_every_safekeeper,
)


def _storage_loopback(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # A service publishes on every interface of its node: any published port is a violation
    # (operators reach the tier through OperatorAccess, on the first host's loopback).
    if args.resource_type not in WORKLOADS or component(args.props) not in STORAGE_TIER:
        return
    for port in published_ports(args.props):
        if port_ip(port) != "127.0.0.1":
            report(
                f"{component(args.props)} {plain(args.props.get('name'))} publishes port "
                f"{number(port.get('internal'))} on {port_ip(port)}; the storage tier is loopback-only"
            )


neon_storage_ports_loopback_only = ResourceValidationPolicy(
    name="neon-storage-ports-loopback-only",
    description="No port of Neon's storage tier is published beyond the host's loopback.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_storage_loopback,
)


def _object_storage_survives_a_host(args: StackValidationArgs, report: ReportViolation) -> None:
    nodes = containers_of(args.resources, "neon-object-storage")
    if not nodes:
        args.not_applicable("no Neon object storage in this stack")
    if len(stack_hosts(args.resources)) < args.get_config().get("minHosts", 3):
        return  # no host to lose one of: stack-hosts-for-a-quorum says so
    drives_by_host: dict[str, int] = {}
    for node in nodes:
        host = pinned_host(node) or f"any node ({label_of(node)})"
        drives_by_host[host] = drives_by_host.get(host, 0) + len(minio_drive_paths(_arguments(node.props)))
    if not writes_survive_losing_any_host(drives_by_host):
        total = sum(drives_by_host.values())
        layout = ", ".join(f"{drives} on {host}" for host, drives in sorted(drives_by_host.items()))
        report(
            f"Neon's object storage has {total} drive(s) ({layout}); writes need {write_quorum(total)}, "
            "so losing one host stops them (and with a single host, loses every layer and WAL "
            "backup): set neon.objectStorage.nodes to 3 and drivesPerNode to 2"
        )


neon_object_storage_survives_a_host = StackValidationPolicy(
    name="neon-object-storage-survives-a-host",
    description="Neon's object storage keeps a write quorum of its erasure-coded drives with any "
    "one host lost: never a single node on a single volume.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_object_storage_survives_a_host,
    config_schema=PolicyConfigSchema(
        properties={"minHosts": {"type": "integer", "default": 3, "minimum": 1}}
    ),
)

POLICIES = [
    neon_safekeepers_odd_at_least_3,
    neon_storage_on_persistent_volumes,
    neon_compute_names_every_safekeeper,
    neon_storage_ports_loopback_only,
    neon_object_storage_survives_a_host,
]
