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
    QDRANT_COLLECTION,
    WORKLOADS,
    component,
    container_spec,
    containers_of,
    env_value,
    envs,
    is_secret,
    is_service,
    label_of,
    number,
    plain,
    published_ports,
    short_of_odd_quorum,
    volume_mounts,
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
        storage = [volume for volume, path in volume_mounts(node.props) if path == "/qdrant/storage"]
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
    if args.resource_type not in WORKLOADS:
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


def _config_path(props) -> str | None:
    args = list(container_spec(props).get("args") or [])
    return args[args.index("--config-path") + 1] if "--config-path" in args[:-1] else None


def _api_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in WORKLOADS or component(args.props) != "qdrant":
        return
    name = plain(args.props.get("name"))
    keys = [e.split("=", 1)[1] for e in envs(args.props) if e.startswith(f"{API_KEY_ENV}=")]
    if is_service(args.props) and not keys:
        # A service reads its key from a Swarm secret layered in by --config-path.
        spec = container_spec(args.props)
        path = _config_path(args.props)
        secret_files = {s.get("fileName") for s in spec.get("secrets") or []}
        config_files = {c.get("fileName") for c in spec.get("configs") or []}
        if path is None:
            report(f"Qdrant node {name} has neither {API_KEY_ENV} nor a --config-path with the key")
        elif path in config_files:
            report(f"Qdrant node {name} reads its API key from a Swarm config ({path}); use a Swarm secret")
        elif path not in secret_files:
            report(f"Qdrant node {name} reads --config-path {path}, which no Swarm secret provides")
        elif not path.endswith((".yaml", ".yml")):
            # qdrant src/settings.rs reads it as an optional file whose format comes from its
            # extension: another name is skipped with a log line, and the node runs keyless.
            report(f"Qdrant node {name}: --config-path {path} must end in .yaml or .yml")
        return
    if not keys or not keys[0]:
        report(f"Qdrant node {name} has no {API_KEY_ENV}")
    elif args.get_config().get("secretsVisible", False) and not is_secret(env_value(args.props)):
        report(f"Qdrant node {name} gets its API key in plaintext; pass it from a secret")


qdrant_api_key_set_and_secret = ResourceValidationPolicy(
    name="qdrant-api-key-set-and-secret",
    description="Every Qdrant node requires an API key, and the key comes from a secret "
    "(a Swarm secret file for a service).",
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
