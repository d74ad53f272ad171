"""The six views of the plan, drawn as PlantUML from one run of the program under mocks.

Every name, image, port, alias, volume, host and link below is read from the registered
resources and their inputs (the rendered kong.yml, compute spec, pageserver.toml and commands);
nothing the graph knows is typed here. Pure functions: a `ProgramRun` in, PlantUML text out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import yaml

from components.kong.gateway import CONFIG_PATH as KONG_YML
from policies.program import ANY_NODE, ProgramRun, RegisteredResource, unwrap_secrets

CONTAINER = "docker:index/container:Container"
NEWLINE = "\\n"  # a line break inside a PlantUML label
TIER_OF = {"qdrant": "Qdrant", "qdrant-lb": "Qdrant", "kong": "Kong", "kong-db": "Kong"}


def _id(text: str) -> str:
    return re.sub(r"\W", "_", text)


def _plain(resource: RegisteredResource, key: str, default: Any = None) -> Any:
    return unwrap_secrets(resource.inputs.get(key, default))


def _label(resource: RegisteredResource, name: str) -> str | None:
    for label in _plain(resource, "labels") or []:
        if label.get("label") == name:
            return label.get("value")
    return None


def _component(container: RegisteredResource) -> str:
    return _label(container, "rag-infra.component") or "?"


def _tier(container: RegisteredResource) -> str:
    component = _component(container)
    return TIER_OF.get(component, "Neon" if component.startswith(("neon", "safekeeper")) else component)


def _image(run: ProgramRun, container: RegisteredResource) -> str:
    image_id = str(_plain(container, "image"))
    resource = image_id.removeprefix("sha256:")
    try:
        return run.named(resource).inputs["name"]
    except KeyError:
        return image_id


def _ports(container: RegisteredResource) -> list[str]:
    found = []
    for port in _plain(container, "ports") or []:
        ip = port.get("ip") or "0.0.0.0"  # noqa: S104 (Docker's default, shown as such)
        found.append(f"{ip}:{int(port['external'])}->{int(port['internal'])}")
    return found


def _aliases(container: RegisteredResource) -> list[str]:
    return [
        alias
        for network in _plain(container, "networksAdvanced") or []
        for alias in network.get("aliases") or []
    ]


def _uploads(container: RegisteredResource) -> dict[str, str]:
    return {u["file"]: u["content"] for u in _plain(container, "uploads") or []}


def _containers(run: ProgramRun) -> list[RegisteredResource]:
    return sorted(run.workloads, key=lambda c: c.name)


def _host_of(run: ProgramRun, resource: RegisteredResource) -> str:
    return run.provider_host(resource)


def _by_alias(run: ProgramRun) -> dict[str, RegisteredResource]:
    return {alias: c for c in run.workloads for alias in _aliases(c)}


def _document(title: str, body: list[str], direction: str = "left to right direction") -> str:
    header = [
        "@startuml",
        f"title {title}",
        "skinparam shadowing false",
        "skinparam componentStyle rectangle",
    ]
    if direction:
        header.append(direction)
    return "\n".join([*header, *body, "@enduml", ""])


def architecture(run: ProgramRun, stack: str) -> str:
    """Tiers and their links."""
    by_alias = _by_alias(run)
    body = ['actor "client" as client']
    tiers: dict[str, list[RegisteredResource]] = {}
    for container in _containers(run):
        tiers.setdefault(_tier(container), []).append(container)
    for tier, containers in sorted(tiers.items()):
        body.append(f'package "{tier}" {{')
        body += [f'  component "{_component(c)}\\n{_aliases(c)[0]}" as {_id(c.name)}' for c in containers]
        body.append("}")
    edges: set[tuple[str, str, str]] = set()
    kong = next((c for c in run.workloads if _component(c) == "kong"), None)
    if kong is not None:
        edges.add(("client", _id(kong.name), "HTTPS / JWT"))
        config = yaml.safe_load(_uploads(kong)[KONG_YML])
        for service in config["services"]:
            host = urlsplit(service["url"]).hostname
            body.append(f'component "{host}\\n(application, not ours)" as {_id(host)}')
            edges.add((_id(kong.name), _id(host), ", ".join(r["name"] for r in service["routes"])))
            for variable, url in _app_env(run).items():
                if variable == "KONG_GATEWAY_URL":
                    continue  # the applications sit behind the gateway
                target = by_alias.get(str(urlsplit(url).hostname))
                if target is not None:
                    edges.add((_id(host), _id(target.name), variable))
    edges |= _storage_edges(run)
    body += [f"{a} --> {b} : {label}" for a, b, label in sorted(edges)]
    return _document(f"rag-infra {stack}: architecture", body)


def _app_env(run: ProgramRun) -> dict[str, str]:
    lines = str(run.outputs.get("appEnv", "")).splitlines()
    return {k: v for k, v in (line.split("=", 1) for line in lines) if k.endswith("_URL")}


def _storage_edges(run: ProgramRun) -> set[tuple[str, str, str]]:
    """Who talks to whom inside the tiers, from the rendered configs and commands."""
    by_alias = _by_alias(run)
    edges = set()

    def link(source: RegisteredResource, host: str | None, label: str) -> None:
        target = by_alias.get(host or "")
        if target is not None and target is not source:
            edges.add((_id(source.name), _id(target.name), label))

    for container in run.workloads:
        uploads = _uploads(container)
        for path, text in uploads.items():
            if path.endswith("config.json"):  # the compute spec
                spec = json.loads(text)["spec"]
                host = re.search(r"host=(\S+)", spec["pageserver_connstring"])
                link(container, host[1] if host else None, "pages (libpq)")
                for safekeeper in spec["safekeeper_connstrings"]:
                    link(container, safekeeper.split(":")[0], "WAL")
            if path.endswith("pageserver.toml"):
                for pattern, label in (
                    (r'^broker_endpoint = "http://([^:"/]+)', "broker"),
                    (r'^remote_storage = \{endpoint = "http://([^:"/]+)', "layers (S3)"),
                    (r'^control_plane_api = "http://([^:"/]+)', "registers, re-attaches"),
                ):
                    found = re.search(pattern, text, re.M)
                    link(container, found[1] if found else None, label)
            if path.endswith("pgbouncer.ini"):
                for host in sorted(set(re.findall(r"= host=(\S+)", text))):
                    link(container, host, "pooled connections")
            if path.endswith("nginx.conf"):
                for host in sorted(set(re.findall(r"server (\S+):6333", text))):
                    link(container, host, "REST / gRPC")
        for variable in _plain(container, "envs") or []:
            if variable.startswith("DATABASE_URL="):
                link(container, urlsplit(variable.split("=", 1)[1]).hostname, "state (Postgres)")
        for argument in _plain(container, "command") or []:
            if argument.startswith("--control-plane-url="):
                link(container, urlsplit(argument.split("=", 1)[1]).hostname, "compute notifications")
            if argument.startswith("--broker-endpoint="):
                link(container, urlsplit(argument.split("=", 1)[1]).hostname, "broker")
            if argument.startswith("--remote-storage="):
                found = re.search(r'endpoint = "http://([^:"]+)', argument)
                link(container, found[1] if found else None, "WAL backup (S3)")
    return edges


def containers(run: ProgramRun, stack: str) -> str:
    """Containers by tier, with their images, published ports and network aliases."""
    network = run.named("docker-network").inputs
    body = [f'frame "network {network.get("name")} ({network.get("driver")})" {{']
    tiers: dict[str, list[RegisteredResource]] = {}
    for container in run.workloads:
        tiers.setdefault(_tier(container), []).append(container)
    for tier, members in sorted(tiers.items()):
        body.append(f'  package "{tier}" {{')
        for container in sorted(members, key=lambda c: c.name):
            # A digest is kept short: the full one is in the containers' inputs and the state.
            image = re.sub(r"@sha256:([0-9a-f]{12})[0-9a-f]+", r"@sha256:\1…", _image(run, container))
            lines = [f"<b>{_plain(container, 'name')}</b>", image, "service"]
            lines += [f"alias {alias}" for alias in _aliases(container)]
            lines += [f"port {port}" for port in _ports(container)]
            body.append(f'    rectangle "{NEWLINE.join(lines)}" as {_id(container.name)}')
        body.append("  }")
    body.append("}")
    return _document(f"rag-infra {stack}: containers", body)


def deployment(run: ProgramRun, stack: str) -> str:
    """Hosts and what runs on each, with published ports and volumes."""
    hosts: dict[str, list[RegisteredResource]] = {}
    for container in _containers(run):
        hosts.setdefault(_host_of(run, container), []).append(container)
    body = []
    docker_hosts = len(run.of_type("pulumi:providers:docker"))
    for index, (host, placed) in enumerate(sorted(hosts.items())):
        title = "Swarm: on any node (replicas at most one per node)" if host == ANY_NODE else host
        body.append(f'node "{title}" as host{index} {{')
        for container in placed:
            details = [f"<b>{_plain(container, 'name')}</b>"]
            details += [f"port {port}" for port in _ports(container)]
            details += [
                f"volume {v['volumeName']}:{v['containerPath']}" for v in _plain(container, "volumes") or []
            ]
            body.append(f'  rectangle "{NEWLINE.join(details)}" as {_id(container.name)}')
        body.append("}")
    # Hosts stacked, what runs on each side by side.
    body += [f"host{index} -[hidden]down- host{index + 1}" for index in range(len(hosts) - 1)]
    return _document(f"rag-infra {stack}: deployment ({docker_hosts} Docker host(s))", body, direction="")


def neon_internals(run: ProgramRun, stack: str) -> str:
    """Compute -> pageserver -> object storage; the safekeeper quorum -> broker."""
    neon = [c for c in _containers(run) if _tier(c) == "Neon"]
    if not neon:
        return _document(f"rag-infra {stack}: Neon (tier off)", ['note "features.neon is false" as off'])
    safekeepers = [c for c in neon if _component(c) == "neon-safekeeper"]
    body = []
    for container in neon:
        shape = "database" if _plain(container, "volumes") else "component"
        if container in safekeepers:
            continue
        body.append(f'{shape} "{_component(container)}\\n{_aliases(container)[0]}" as {_id(container.name)}')
    body.append(f'package "safekeeper quorum ({len(safekeepers)}, majority {len(safekeepers) // 2 + 1})" {{')
    body += [f'  database "{_aliases(c)[0]}" as {_id(c.name)}' for c in safekeepers]
    body.append("}")
    names = {_id(c.name) for c in neon}
    body += [
        f"{a} --> {b} : {label}" for a, b, label in sorted(_storage_edges(run)) if a in names and b in names
    ]
    return _document(f"rag-infra {stack}: Neon internals", body)


def qdrant_topology(run: ProgramRun, stack: str) -> str:
    """Nodes, collections with shards and replicas, the LB and its ports."""
    nodes = [c for c in _containers(run) if _component(c) == "qdrant"]
    lb = next((c for c in run.workloads if _component(c) == "qdrant-lb"), None)
    if lb is None:
        return _document(
            f"rag-infra {stack}: Qdrant (tier off)", ['note "features.qdrantCluster is false" as off']
        )
    body = [f'component "NGINX LB{NEWLINE}{NEWLINE.join(_ports(lb))}" as lb']
    body.append(f'package "Raft cluster ({len(nodes)} nodes)" {{')
    body += [f'  node "{_aliases(n)[0]}\\n{_run_host(run, n)}" as {_id(n.name)}' for n in nodes]
    body.append("}")
    body += [f"lb --> {_id(n.name)}" for n in nodes]
    for collection in run.of_type("pulumi-python:dynamic/qdrant:Collection"):
        inputs = unwrap_secrets(collection.inputs)
        shards, replicas = int(inputs["shard_number"]), int(inputs["replication_factor"])
        body.append(
            f'collections "{inputs["name"]}\\n{shards} shards x {replicas} replicas'
            f"\\nwrite consistency {int(inputs['write_consistency_factor'])}"
            f'\\nvectors {int(inputs["vector_size"])} {inputs["distance"]}" as {_id(collection.name)}'
        )
        body.append(f"{_id(collection.name)} .. lb : created through")
    return _document(f"rag-infra {stack}: Qdrant topology", body)


def _run_host(run: ProgramRun, resource: RegisteredResource) -> str:
    return urlsplit(_host_of(run, resource)).hostname or _host_of(run, resource)


def sequence(run: ProgramRun, stack: str) -> str:
    """A request through Kong to each route's upstream, and on to the stores it is given."""
    kong = next((c for c in run.workloads if _component(c) == "kong"), None)
    if kong is None:
        return _document(
            f"rag-infra {stack}: requests (Kong off)", ['note "features.kongGateway is false" as off'], ""
        )
    config = yaml.safe_load(_uploads(kong)[KONG_YML])
    body = ["actor client", f'participant "Kong\\n{_aliases(kong)[0]}" as kong']
    apps = []
    for service in config["services"]:
        host = urlsplit(service["url"]).hostname
        apps.append(host)
        body.append(f'participant "{host}" as {_id(host)}')
    env = {k: v for k, v in _app_env(run).items() if k != "KONG_GATEWAY_URL"}
    for variable, url in env.items():
        body.append(f'participant "{variable}\\n{urlsplit(url).hostname}" as {_id(variable)}')
    lb = next((c for c in run.workloads if _component(c) == "qdrant-lb"), None)
    upstreams = (
        sorted(set(re.findall(r"server (\S+):6333", _uploads(lb)["/etc/nginx/nginx.conf"]))) if lb else []
    )
    if upstreams:
        body.append(f'participant "Qdrant nodes\\n{", ".join(upstreams)}" as qdrant_nodes')
    global_plugins = [p["name"] for p in config.get("plugins") or []]
    for service in config["services"]:
        host = urlsplit(service["url"]).hostname
        for route in service["routes"]:
            plugins = global_plugins + [p["name"] for p in route.get("plugins") or []]
            body.append(f"== {route['name']} ==")
            path = route["paths"][0].removeprefix("~").removesuffix("(/|$)")
            body.append(f"client -> kong : {'/'.join(route['methods'])} {path}/…")
            body.append(f"kong -> kong : {', '.join(plugins)}")
            body.append(f"kong -> {_id(host)} : {service['url']} (strip_path {route['strip_path']})")
            for variable in env:
                body.append(f"{_id(host)} -> {_id(variable)} : {variable} (appEnv)")
                if variable == "QDRANT_CLUSTER_URL" and upstreams:
                    body.append(f"{_id(variable)} -> qdrant_nodes : one node, the next one on failure")
            body.append(f"{_id(host)} --> kong")
            body.append("kong --> client")
    return _document(f"rag-infra {stack}: requests through Kong", body, direction="")


VIEWS: dict[str, Callable[[ProgramRun, str], str]] = {
    "architecture": architecture,
    "sequence": sequence,
    "containers": containers,
    "neon-internals": neon_internals,
    "qdrant-topology": qdrant_topology,
    "deployment": deployment,
}
