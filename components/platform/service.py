"""Swarm services: how every long-running component of the stack runs.

One builder, `SwarmService`, turns a `ServiceSpec` into a pulumi-docker `Service` created
through the manager (the first host), with its files as Swarm configs and secrets:

- **Placement.** A stateful member (a Qdrant node, a safekeeper, the pageserver, a database)
  is pinned to the node labelled `rag-infra.host.<index>` (components/platform/swarm.py), where
  its named volume lives; a stateless part is left to Swarm, which reschedules it when its node
  fails, or runs on every node (`global`).
- **Files, never environment values.** Each `ServiceFile` becomes a Swarm config (or a secret
  when it holds one) mounted read-only at its path. Swarm configs and secrets are immutable: the
  object's name ends in a digest of its content, keyed with a per-stack salt so a name reveals
  nothing about a secret, and a changed file is a new object the service switches to in a
  rolling update (the old one goes after the service no longer uses it).
- **Rolling updates with automatic rollback.** One task at a time; Swarm watches each new task
  for `monitor` and rolls the service back if it fails or turns unhealthy. A stateful member
  stops its old task before starting the new one (two processes must never share its volume),
  and so does a single writer without a volume (`exclusive`: a compute, the storage
  controller); any other stateless part starts the new task first. `converge_config` makes
  `pulumi up` wait until every task runs, healthy (Swarm holds a task in `starting` until its
  health check passes), and fail when an update was rolled back (terraform-provider-docker v4.5.0
  resource_docker_service_funcs.go: resourceDockerServiceUpdateRefreshFunc reports
  `rollback_completed` as an error; a create that does not converge removes the service).
- **Deletion** waits up to `stop_grace_period` for the tasks' containers to go (deleteService
  does only when it is set), so the network and volumes can go after it.
- **Names.** Every service resolves by DNS round robin (`dnsrr`, see `ServiceSpec`).
- **Ports.** Published in `host` mode only: the task's own node answers, so no routing-mesh hop
  and no single host on the path. Swarm cannot publish on loopback, so operator ports are never
  published by a service (components/platform/operator_access.py reaches them instead).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_docker as docker

from components.platform.swarm import LABEL_PREFIX

FILE_LABEL = "rag-infra.file"
"""Label of a Swarm config or secret: the path the service reads it at."""

UPDATE_MONITOR = "30s"
"""How long Swarm watches a new task (running and healthy) before it counts the update done."""
CONVERGE_TIMEOUT = "5m"
"""How long `pulumi up` waits for a service's tasks to run before it fails."""


@dataclass(frozen=True)
class ServiceFile:
    """A file the service reads: rendered content mounted read-only at `path`."""

    path: str
    content: pulumi.Input[str]
    secret: bool = False
    """Mount it as a Swarm secret (encrypted in the Raft log, kept in memory on the node)."""
    mode: int = 0o444


@dataclass(frozen=True)
class HealthCheck:
    """A Docker health check; Swarm acts on it (restart, rollback)."""

    tests: Sequence[str]
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 3
    start_period: str = "0s"


@dataclass(frozen=True)
class Mount:
    """A named volume (created on the pinned node by components.platform.hosts) at `target`."""

    volume: pulumi.Input[str]
    target: str


@dataclass(frozen=True)
class ServiceSpec:
    """One long-running component as a Swarm service."""

    alias: str
    """Its DNS name on the stack network; the service is `<prefix>-<alias>`."""
    component: str
    """The `rag-infra.component` label (policies and the tests find services by it)."""
    image: pulumi.Input[str]
    """Best a digest (`hosts.image_ref`): the provider records the digest Swarm resolved, so a
    tag alone would show a change on every preview."""
    health: HealthCheck
    extra_aliases: Sequence[str] = ()
    """Other names it answers to there (a name several services share resolves to all of them)."""
    args: Sequence[str] | None = None
    """Arguments after the image's entrypoint (its CMD replaced)."""
    command: Sequence[str] | None = None
    """Replaces the image's entrypoint."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain settings only; anything secret goes in a `ServiceFile(secret=True)`."""
    files: Sequence[ServiceFile] = ()
    mounts: Sequence[Mount] = ()
    pinned_to: int | None = None
    """Host index a stateful member stays on (with its volume); None lets Swarm choose."""
    replicas: int = 1
    """Replicated, never `global`: the provider can wait for a replicated service to converge
    only (terraform-provider-docker v4.5.0 conflicts converge_config with global mode)."""
    ports: Mapping[int, int] = field(default_factory=dict)
    """Container port -> host port, published in host mode on the nodes that run a task."""
    endpoint_mode: Literal["vip", "dnsrr"] = "dnsrr"
    """DNS round robin by default: a name resolves to the tasks' own addresses. A virtual IP puts
    IPVS between, a kernel module not every host has (without it, connections to the VIP find
    "no route to host", as on the test engine's kernel) and whose idle-connection expiry cuts
    long-lived connections (Raft, WAL streams, database sessions)."""
    exclusive: bool = False
    """Never two tasks at once, though it has no volume: a single writer (a compute on its
    timeline, the storage controller on its database) stops before its successor starts."""
    memory_mb: int | None = None
    hostname: str | None = None
    user: str | None = None
    stop_grace_period: str = "30s"


MAX_OBJECT_NAME = 64
"""Swarm refuses a config or secret name longer than this (swarmkit
manager/controlapi/common.go, validateConfigOrSecretAnnotations)."""


def object_name(prefix: str, alias: str, path: str, content: str, salt: str) -> str:
    """`<prefix>-<alias>-<file>-<digest>`: a new name for new content (Swarm objects are
    immutable). The digest is keyed with the stack's salt, so it tells nothing about a secret,
    and covers the alias and path too, so two services mounting the same content never share
    (nor fight over) one name. The `<alias>-<file>` part is cut to keep within Swarm's limit."""
    message = "\0".join((alias, path, content)).encode()
    digest = hmac.new(salt.encode(), message, hashlib.sha256).hexdigest()[:12]
    room = MAX_OBJECT_NAME - len(prefix) - len(digest) - 2
    if room < 4:
        raise ValueError(
            f"the Docker object prefix {prefix!r} leaves no room for a Swarm config or secret name "
            f"(at most {MAX_OBJECT_NAME} characters); shorten the project or stack name"
        )
    file = path.rstrip("/").rsplit("/", 1)[-1].replace(".", "-")
    stem = f"{alias}-{file}"[:room].strip("-_.")
    return f"{prefix}-{stem}-{digest}"


def placement_constraint(host_index: int) -> str:
    """The constraint that keeps a task on the node labelled for host `host_index`."""
    return f"node.labels.{LABEL_PREFIX}{host_index}==true"


@dataclass(frozen=True)
class SwarmServiceArgs:
    """A spec and where it goes."""

    spec: ServiceSpec
    prefix: str
    """Prefix of Docker object names (`<project>-<stack>`)."""
    network: pulumi.Input[str]
    labels: Mapping[str, str]
    provider: docker.Provider
    """The manager's provider."""
    salt: pulumi.Output[str]
    """Per-stack secret key of the config and secret names."""
    depends_on: Sequence[pulumi.Resource] = ()


class SwarmService(pulumi.ComponentResource):
    """A Swarm service with its configs and secrets."""

    service: docker.Service
    name: pulumi.Output[str]
    revision: pulumi.Output[str]
    """Changes whenever the service's spec does: a dependant that must run after each rolling
    update of this service (a quorum gate) takes it as an input."""

    def __init__(self, name: str, args: SwarmServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:SwarmService", name, None, opts)
        spec = args.spec
        # Configs and secrets exist only in a swarm: they wait for it like the service does.
        child = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        configs, secrets = [], []
        for index, file in enumerate(spec.files):
            content = pulumi.Output.from_input(file.content)
            object_name_ = pulumi.Output.unsecret(
                pulumi.Output.all(content, args.salt).apply(
                    lambda pair, path=file.path: object_name(args.prefix, spec.alias, path, pair[0], pair[1])
                )
            )
            data = content.apply(lambda text: base64.b64encode(text.encode()).decode())
            # The path it is mounted at: policies find a service's file by component and path.
            labels = {**args.labels, FILE_LABEL: file.path}
            if file.secret:
                secret = docker.Secret(
                    f"{name}-secret-{index}",
                    name=object_name_,
                    data=pulumi.Output.secret(data),
                    labels=[docker.SecretLabelArgs(label=k, value=v) for k, v in labels.items()],
                    # A new name for new content: create it first, drop the old one once the
                    # service has moved off it.
                    opts=child,
                )
                secrets.append(
                    docker.ServiceTaskSpecContainerSpecSecretArgs(
                        secret_id=secret.id,
                        secret_name=secret.name,
                        file_name=file.path,
                        file_mode=file.mode,
                    )
                )
            else:
                config = docker.ServiceConfig(
                    f"{name}-config-{index}",
                    name=object_name_,
                    data=data,
                    labels=[docker.ServiceConfigLabelArgs(label=k, value=v) for k, v in labels.items()],
                    opts=child,
                )
                configs.append(
                    docker.ServiceTaskSpecContainerSpecConfigArgs(
                        config_id=config.id,
                        config_name=config.name,
                        file_name=file.path,
                        file_mode=file.mode,
                    )
                )

        stateful = spec.pinned_to is not None
        one_at_a_time = stateful or spec.exclusive
        update = dict(
            parallelism=1,
            delay="5s",
            failure_action="rollback",
            monitor=UPDATE_MONITOR,
            max_failure_ratio="0",
            # Two processes never share a member's volume (nor a single writer's role); a
            # stateless part keeps serving.
            order="stop-first" if one_at_a_time else "start-first",
        )
        self.service = docker.Service(
            f"{name}-service",
            name=f"{args.prefix}-{spec.alias}",
            labels=[docker.ServiceLabelArgs(label=k, value=v) for k, v in args.labels.items()],
            task_spec=docker.ServiceTaskSpecArgs(
                container_spec=docker.ServiceTaskSpecContainerSpecArgs(
                    image=spec.image,
                    args=list(spec.args) if spec.args is not None else None,
                    commands=list(spec.command) if spec.command is not None else None,
                    env=dict(spec.env) or None,
                    hostname=spec.hostname,
                    user=spec.user,
                    configs=configs or None,
                    secrets=secrets or None,
                    mounts=[
                        docker.ServiceTaskSpecContainerSpecMountArgs(
                            type="volume", source=m.volume, target=m.target
                        )
                        for m in spec.mounts
                    ]
                    or None,
                    healthcheck=docker.ServiceTaskSpecContainerSpecHealthcheckArgs(
                        tests=list(spec.health.tests),
                        interval=spec.health.interval,
                        timeout=spec.health.timeout,
                        retries=spec.health.retries,
                        start_period=spec.health.start_period,
                    ),
                    stop_grace_period=spec.stop_grace_period,
                    labels=[
                        docker.ServiceTaskSpecContainerSpecLabelArgs(label=k, value=v)
                        for k, v in args.labels.items()
                    ],
                ),
                networks_advanceds=[
                    docker.ServiceTaskSpecNetworksAdvancedArgs(
                        id=args.network, aliases=[spec.alias, *spec.extra_aliases]
                    )
                ],
                placement=docker.ServiceTaskSpecPlacementArgs(
                    constraints=[placement_constraint(spec.pinned_to)] if stateful else None,
                    # At most one replica per node: N replicas survive N-1 lost nodes.
                    max_replicas=1 if spec.replicas > 1 else None,
                ),
                resources=docker.ServiceTaskSpecResourcesArgs(
                    limits=docker.ServiceTaskSpecResourcesLimitsArgs(
                        memory_bytes=spec.memory_mb * 1024 * 1024 if spec.memory_mb else None
                    )
                ),
                restart_policy=docker.ServiceTaskSpecRestartPolicyArgs(
                    condition="any", delay="5s", window="60s"
                ),
            ),
            mode=docker.ServiceModeArgs(replicated=docker.ServiceModeReplicatedArgs(replicas=spec.replicas)),
            endpoint_spec=docker.ServiceEndpointSpecArgs(
                mode=spec.endpoint_mode,
                ports=[
                    docker.ServiceEndpointSpecPortArgs(
                        target_port=target, published_port=published, publish_mode="host", protocol="tcp"
                    )
                    for target, published in spec.ports.items()
                ]
                or None,
            ),
            update_config=docker.ServiceUpdateConfigArgs(**update),
            rollback_config=docker.ServiceRollbackConfigArgs(**update | {"failure_action": "pause"}),
            converge_config=docker.ServiceConvergeConfigArgs(delay="2s", timeout=CONVERGE_TIMEOUT),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.provider, depends_on=list(args.depends_on)
            ),
        )
        self.name = self.service.name
        # The service's id and its spec's inputs: they change together with each update.
        self.revision = pulumi.Output.all(
            self.service.id, self.service.task_spec, self.service.update_config
        ).apply(lambda parts: hashlib.sha256(repr(parts).encode()).hexdigest()[:16])
        self.register_outputs({"name": self.name})
