"""Helpers shared by the rules: reading Docker resource properties as the engine shows them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ReportViolation
from pulumi_policy.secret import Secret

CONTAINER = "docker:index/container:Container"
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


def component(props: Mapping[str, Any]) -> str | None:
    """The `rag-infra.component` label every container of the stack carries."""
    for label in plain(props.get("labels")) or []:
        if isinstance(label, Mapping) and label.get("label") == COMPONENT_LABEL:
            return label.get("value")
    return None


def published_ports(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in plain(props.get("ports")) or [] if isinstance(p, Mapping)]


def port_ip(port: Mapping[str, Any]) -> str:
    # Docker publishes on every interface when no ip is given.
    return port.get("ip") or "0.0.0.0"  # noqa: S104


def envs(props: Mapping[str, Any]) -> list[str]:
    return [e for e in plain(props.get("envs")) or [] if isinstance(e, str)]


def uploads(props: Mapping[str, Any]) -> dict[str, str]:
    return {
        u.get("file"): u.get("content") for u in plain(props.get("uploads")) or [] if isinstance(u, Mapping)
    }


def containers_of(resources: Iterable[Any], *components: str) -> list[Any]:
    """PolicyResources that are containers of the given components (any, when none given)."""
    found = []
    for resource in resources:
        if resource.resource_type != CONTAINER:
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
