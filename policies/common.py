"""Helpers shared by the rules: reading Docker resource properties as the engine shows them."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ReportViolation
from pulumi_policy.secret import Secret

CONTAINER = "docker:index/container:Container"
SERVICE = "docker:index/service:Service"
WORKLOADS = (CONTAINER, SERVICE)
"""What runs a long-running component: a plain container or a Swarm service. The helpers below
read either; a rule that speaks of "containers" keeps its meaning on services."""
SERVICE_CONFIG = "docker:index/serviceConfig:ServiceConfig"
SERVICE_SECRET = "docker:index/secret:Secret"
SERVICE_FILES = (SERVICE_CONFIG, SERVICE_SECRET)
"""A service's files: each labelled with its component and its path (rag-infra.file)."""
HOST_CONSTRAINT = re.compile(r"node\.labels\.rag-infra\.host\.(\d+)==true")
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
QDRANT_COLLECTION = "pulumi-python:dynamic/qdrant:Collection"
COMPONENT_LABEL = "rag-infra.component"
LOOPBACK = "127.0.0.1"
# Wire form of a secret value (Pulumi's secret signature), as the offline checker passes it.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


def is_secret(value: Any) -> bool:
    return isinstance(value, Secret) or (isinstance(value, Mapping) and SECRET_SIG in value)


def plain(value: Any) -> Any:
    """A property with any secret wrapper removed, recursively."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, Mapping):
        if SECRET_SIG in value:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def number(value: Any) -> Any:
    """Numbers reach policies as floats (protobuf Struct); show 3.0 as 3."""
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def short_of_odd_quorum(members: int, minimum: int) -> bool:
    """A majority quorum wants an odd count (an even one tolerates no more failures) of at
    least `minimum`."""
    return members < minimum or members % 2 == 0


def label(props: Mapping[str, Any], name: str) -> str | None:
    """The value of label `name` of a container, service, volume, config or secret."""
    for item in plain(props.get("labels")) or []:
        if isinstance(item, Mapping) and item.get("label") == name:
            return item.get("value")
    return None


def component(props: Mapping[str, Any]) -> str | None:
    """The `rag-infra.component` label every container of the stack carries."""
    return label(props, COMPONENT_LABEL)


def task_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A service's task spec, secret wrappers removed; empty for a container."""
    return plain(props.get("taskSpec")) or {}


def container_spec(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A service's container spec; empty for a container."""
    return task_spec(props).get("containerSpec") or {}


def is_service(props: Mapping[str, Any]) -> bool:
    return "taskSpec" in props


def published_ports(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`{internal, external, ip}` of every published port. A service publishes on every
    interface of its node (Swarm has no bind address)."""
    if is_service(props):
        endpoint = plain(props.get("endpointSpec")) or {}
        return [
            {"internal": p.get("targetPort"), "external": p.get("publishedPort"), "ip": "0.0.0.0"}  # noqa: S104
            for p in endpoint.get("ports") or []
            if isinstance(p, Mapping)
        ]
    return [p for p in plain(props.get("ports")) or [] if isinstance(p, Mapping)]


def port_ip(port: Mapping[str, Any]) -> str:
    # Docker publishes on every interface when no ip is given.
    return port.get("ip") or "0.0.0.0"  # noqa: S104


def env_value(props: Mapping[str, Any]) -> Any:
    """The environment as registered (a service's map, a container's list), secret marker kept."""
    if is_service(props):
        return ((props.get("taskSpec") or {}).get("containerSpec") or {}).get("env")
    return props.get("envs")


def envs(props: Mapping[str, Any]) -> list[str]:
    """`KEY=value` entries of a container or a service."""
    if is_service(props):
        return [f"{k}={v}" for k, v in (container_spec(props).get("env") or {}).items()]
    return [e for e in plain(props.get("envs")) or [] if isinstance(e, str)]


def aliases(props: Mapping[str, Any]) -> set[str]:
    """The names a container or a service's tasks have on their networks."""
    networks = (
        task_spec(props).get("networksAdvanceds")
        if is_service(props)
        else plain(props.get("networksAdvanced"))
    )
    return {alias for network in networks or [] for alias in network.get("aliases") or []}


def file_text(resources: Iterable[Any], workload: Any, path: str) -> str | None:
    """The content of the file at `path` of a workload: uploaded into a container, or the Swarm
    config or secret a service mounts there (found by the object name it references)."""
    if not is_service(workload.props):
        return uploads(workload.props).get(path)
    spec = container_spec(workload.props)
    wanted = [
        (typ, ref.get(key))
        for kind, typ, key in (
            ("configs", SERVICE_CONFIG, "configName"),
            ("secrets", SERVICE_SECRET, "secretName"),
        )
        for ref in spec.get(kind) or []
        if ref.get("fileName") == path
    ]
    for resource in resources:
        if (resource.resource_type, plain(resource.props.get("name"))) in wanted:
            data = plain(resource.props.get("data"))
            return base64.b64decode(data).decode() if isinstance(data, str) else None
    return None


def uploads(props: Mapping[str, Any]) -> dict[str, str]:
    return {
        u.get("file"): u.get("content") for u in plain(props.get("uploads")) or [] if isinstance(u, Mapping)
    }


def healthcheck_tests(props: Mapping[str, Any]) -> list[str]:
    check = container_spec(props).get("healthcheck") if is_service(props) else plain(props.get("healthcheck"))
    return list((check or {}).get("tests") or [])


def memory_limited(props: Mapping[str, Any]) -> bool:
    if is_service(props):
        limits = (task_spec(props).get("resources") or {}).get("limits") or {}
        return bool(limits.get("memoryBytes"))
    return bool(plain(props.get("memory")))


def restarts(props: Mapping[str, Any]) -> str:
    """The restart policy's name: a container's `restart`, a service's restart condition."""
    if is_service(props):
        policy = task_spec(props).get("restartPolicy") or {}
        return policy.get("condition") or "any"  # Swarm's default
    return plain(props.get("restart")) or "no"  # the provider's default


def restarts_never(props: Mapping[str, Any]) -> bool:
    return restarts(props) in ("no", "none")


def image_of(props: Mapping[str, Any]) -> str:
    return (container_spec(props).get("image") if is_service(props) else plain(props.get("image"))) or ""


def volume_mounts(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(named volume, path) of every volume a container or a service mounts."""
    if is_service(props):
        return [
            (m.get("source"), m.get("target"))
            for m in container_spec(props).get("mounts") or []
            if m.get("type", "volume") == "volume" and m.get("source")
        ]
    return [
        (v.get("volumeName"), v.get("containerPath"))
        for v in plain(props.get("volumes")) or []
        if v.get("volumeName")
    ]


def pinned_host(resource: Any) -> str | None:
    """Where a workload runs: a service's host-label constraint (`host <index>`, None when Swarm
    may place it anywhere), a container's provider host."""
    if is_service(resource.props):
        placement = task_spec(resource.props).get("placement") or {}
        for constraint in placement.get("constraints") or []:
            match = HOST_CONSTRAINT.fullmatch(constraint.replace(" ", ""))
            if match:
                return f"host {match[1]}"
        return None
    provider = resource.provider
    if provider is None:
        return "the default Docker host"
    return plain((provider.props or {}).get("host")) or provider.name


def stack_hosts(resources: Iterable[Any]) -> set[str]:
    """The Docker hosts the stack has a provider for."""
    return {
        plain((r.props or {}).get("host")) or r.name
        for r in resources
        if r.resource_type == "pulumi:providers:docker"
    }


def containers_of(resources: Iterable[Any], *components: str) -> list[Any]:
    """PolicyResources that run the given components (any, when none given): containers and
    Swarm services."""
    found = []
    for resource in resources:
        if resource.resource_type not in WORKLOADS:
            continue
        if not components or component(resource.props) in components:
            found.append(resource)
    return found


def label_of(resource: Any) -> str:
    return plain(resource.props.get("name")) or resource.name


def report_each(report: ReportViolation, messages: Iterable[str], urn: str | None = None) -> None:
    for message in messages:
        report(message, urn) if urn else report(message)


_IMAGE = re.compile(r"(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?")


def image_pinned(ref: str) -> bool:
    match = _IMAGE.fullmatch(ref)
    if not match:
        return False
    if match["digest"]:
        return True
    # A registry port (host:5000/repo) is not a tag: the tag follows the last slash.
    tag = match["tag"] if "/" not in (match["tag"] or "") else None
    # A floating name (latest, dev, stable, alpine) carries no version number.
    return bool(tag) and tag != "latest" and bool(re.search(r"\d", tag))
