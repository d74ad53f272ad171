"""Qdrant HA rules: quorum size, replication, volumes, the p2p port and the API key."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.common import (
    CONTAINER,
    QDRANT_COLLECTION,
    component,
    containers_of,
    envs,
    is_secret,
    label_of,
    number,
    plain,
    published_ports,
    short_of_odd_quorum,
)

P2P_PORT = 6335
API_KEY_ENV = "QDRANT__SERVICE__API_KEY"


def _nodes_odd_and_enough(args: StackValidationArgs, report: ReportViolation) -> None:
    minimum = args.get_config().get("minNodes", 3)
    nodes = containers_of(args.resources, "qdrant")
    if not nodes:
        args.not_applicable("no Qdrant cluster in this stack")
    if short_of_odd_quorum(len(nodes), minimum):
        report(f"the Qdrant cluster has {len(nodes)} nodes; it needs an odd number of at least {minimum}")


qdrant_nodes_odd_at_least_3 = StackValidationPolicy(
    name="qdrant-nodes-odd-at-least-3",
    description="A Qdrant Raft cluster needs an odd number of nodes, at least three, to survive a node loss.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_nodes_odd_and_enough,
    config_schema=PolicyConfigSchema(
        properties={"minNodes": {"type": "integer", "default": 3, "minimum": 1}}
    ),
)


def _replication_at_least(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != QDRANT_COLLECTION:
        return
    minimum = args.get_config().get("minReplicationFactor", 2)
    factor = number(args.props.get("replication_factor"))
    if factor is None or factor < minimum:
        report(
            f"collection {plain(args.props.get('name'))} has replication_factor {factor}; "
            f"it needs at least {minimum}"
        )


qdrant_replication_factor_at_least_2 = ResourceValidationPolicy(
    name="qdrant-replication-factor-at-least-2",
    description="Every shard of a Qdrant collection is kept on at least two nodes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_replication_at_least,
    config_schema=PolicyConfigSchema(
        properties={"minReplicationFactor": {"type": "integer", "default": 2, "minimum": 1}}
    ),
)


def _replication_within_nodes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != QDRANT_COLLECTION:
        return
    factor, peers = number(args.props.get("replication_factor")), number(args.props.get("expected_peers"))
    if factor is not None and peers is not None and factor > peers:
        report(
            f"collection {plain(args.props.get('name'))} has replication_factor {factor} but the cluster has "
            f"{peers} nodes; Qdrant would silently place fewer replicas"
        )


qdrant_replication_factor_at_most_nodes = ResourceValidationPolicy(
    name="qdrant-replication-factor-at-most-nodes",
    description="A collection's replication factor never exceeds the number of Qdrant nodes.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_replication_within_nodes,
)


def _write_consistency(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != QDRANT_COLLECTION:
        return
    wcf, factor = (
        number(args.props.get("write_consistency_factor")),
        number(args.props.get("replication_factor")),
    )
    if wcf is not None and factor is not None and wcf > factor:
        report(
            f"collection {plain(args.props.get('name'))} has write_consistency_factor {wcf} above its "
            f"replication_factor {factor}; every write would fail"
        )


qdrant_write_consistency_within_replication = ResourceValidationPolicy(
    name="qdrant-write-consistency-within-replication",
    description="A collection's write consistency factor is at most its replication factor.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_write_consistency,
)


def _own_volume(args: StackValidationArgs, report: ReportViolation) -> None:
    owners: dict[str, str] = {}
    for node in containers_of(args.resources, "qdrant"):
        storage = [
            v.get("volumeName")
            for v in plain(node.props.get("volumes")) or []
            if v.get("containerPath") == "/qdrant/storage" and v.get("volumeName")
        ]
        if not storage:
            report(f"Qdrant node {label_of(node)} has no named volume on /qdrant/storage", node.urn)
            continue
        if storage[0] in owners:
            report(
                f"Qdrant nodes {owners[storage[0]]} and {label_of(node)} share volume {storage[0]}", node.urn
            )
        owners[storage[0]] = label_of(node)


qdrant_node_has_own_volume = StackValidationPolicy(
    name="qdrant-node-has-own-volume",
    description="Every Qdrant node keeps its storage on a named volume of its own.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_own_volume,
)


def _p2p_unpublished(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CONTAINER:
        return
    for port in published_ports(args.props):
        if P2P_PORT in (number(port.get("internal")), number(port.get("external"))):
            report(
                f"container {plain(args.props.get('name'))} publishes port {P2P_PORT}, "
                "Qdrant's unauthenticated p2p port"
            )


qdrant_p2p_port_unpublished = ResourceValidationPolicy(
    name="qdrant-p2p-port-unpublished",
    description="Qdrant's p2p/Raft port 6335 is never published to a host.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_p2p_unpublished,
)


def _api_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != CONTAINER or component(args.props) != "qdrant":
        return
    name = plain(args.props.get("name"))
    keys = [e.split("=", 1)[1] for e in envs(args.props) if e.startswith(f"{API_KEY_ENV}=")]
    if not keys or not keys[0]:
        report(f"Qdrant node {name} has no {API_KEY_ENV}")
    elif args.get_config().get("secretsVisible", False) and not is_secret(args.props.get("envs")):
        report(f"Qdrant node {name} gets its API key in plaintext; pass it from a secret")


qdrant_api_key_set_and_secret = ResourceValidationPolicy(
    name="qdrant-api-key-set-and-secret",
    description="Every Qdrant node requires an API key, and the key comes from a secret.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_api_key,
    config_schema=PolicyConfigSchema(
        properties={
            "secretsVisible": {
                "type": "boolean",
                "default": False,
                "description": "Set by policies.check: Python policies under the CLI cannot see secretness.",
            }
        }
    ),
)

POLICIES = [
    qdrant_nodes_odd_at_least_3,
    qdrant_replication_factor_at_least_2,
    qdrant_replication_factor_at_most_nodes,
    qdrant_write_consistency_within_replication,
    qdrant_node_has_own_volume,
    qdrant_p2p_port_unpublished,
    qdrant_api_key_set_and_secret,
]
