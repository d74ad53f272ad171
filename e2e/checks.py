"""What the end-to-end tests check of any deployed stack (dev, prod squeezed onto one engine)."""

from __future__ import annotations

import re
import time

import requests
import yaml

from components.neon.object_storage import expand_ellipses
from e2e.stack import Deployment
from tests.support.prometheus import active_targets
from verify.reach import accepts, non_loopback_address

# Host names in URLs, libpq strings, nginx `server` lines and host:port pairs; a name must end
# where a host name ends (`http://qdrant_rest` is an nginx upstream group, not a host).
_NAME_PATTERNS = (
    re.compile(r"://(?:[^@/\s]*@)?([a-z][a-z0-9.-]*)(?![\w])"),
    re.compile(r"\bhost=([a-z][a-z0-9.-]*)(?![\w])"),
    re.compile(r"\bserver ([a-z][a-z0-9-]*):\d+"),
    re.compile(r"(?:^|[\s=\"'])([a-z][a-z0-9-]*):\d{2,5}\b"),
)
PUBLIC_PORTS = (8000, 6333, 6334, 6432)
"""Kong's proxy, the Qdrant LB (REST, gRPC), the pooler: what clients reach from elsewhere."""
OPERATOR_PORTS = frozenset(
    {8001, 8100, 1234, 9898, 6400, 7676, 7677, 7678, 9000, 9001, 9002, 9090, 9093, 3000}
)
"""Kong admin and status, the storage controller, pageserver, safekeepers, MinIO nodes,
Prometheus, Alertmanager, Grafana: loopback only."""


def names_in(text: str) -> set[str]:
    """Single-label host names a config text connects to: the stack's own aliases (a dotted
    name, like a CORS origin's, is outside the stack network)."""
    return {m for pattern in _NAME_PATTERNS for m in pattern.findall(text) if "." not in m}


def names_resolve_to_their_containers(deployment: Deployment, prober: str) -> set[str]:
    """Every host name in every command, environment and uploaded file resolves, through
    Docker's DNS on the stack network, to the container that declared that alias (asked from
    inside `prober`). Returns the names checked."""
    aliases: dict[str, list[str]] = {}
    names: set[str] = set()
    application_hosts: set[str] = set()
    for resource in deployment.run.workloads:
        for network in resource.plain("networksAdvanced") or []:
            for alias in network.get("aliases") or []:
                # A name several services declare (MinIO's shared `minio`) resolves to any of them.
                aliases.setdefault(alias, []).append(resource.plain("name"))
        uploads = resource.plain("uploads") or []
        words = [*(resource.plain("command") or []), *(resource.plain("envs") or [])]
        # MinIO's endpoints name every node at once: http://minio-{0...2}:9000/data{0...1}.
        expanded = [e for word in words for e in expand_ellipses(word)]
        text = " ".join(expanded + [upload["content"] for upload in uploads])
        names |= names_in(text)
        for upload in uploads:
            if upload["file"].endswith("kong.yml"):
                # The RAG services behind Kong belong to the application, not to this stack.
                services = yaml.safe_load(upload["content"])["services"]
                application_hosts |= {names_in(s["url"]).pop() for s in services}
    names -= {"localhost"} | application_hosts
    network = deployment.network_name
    for name in sorted(names):
        assert name in aliases, f"{name} is used by a config but no container declares it"
        code, output = deployment.container(prober).exec_run(["getent", "hosts", name])
        assert code == 0, f"{name} does not resolve on the stack network"
        addresses = {
            deployment.container(declared).attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
            for declared in aliases[name]
        }
        assert output.decode().split()[0] in addresses, f"{name} resolves to {output!r}, not {aliases[name]}"
    return names


def bindings(container) -> set[tuple[str, int, int]]:
    """(host IP, host port, container port) of every IPv4 binding the engine made."""
    ports = container.attrs["NetworkSettings"]["Ports"] or {}
    return {
        (binding["HostIp"], int(binding["HostPort"]), int(port.split("/")[0]))
        for port, bindings in ports.items()
        for binding in bindings or []
        if binding["HostIp"] != "::"
    }


def published_ports_are_the_declared_ones(deployment: Deployment) -> None:
    """Each running container's real bindings equal its `ports`; operator ports on loopback."""
    for resource in deployment.run.workloads:
        if resource.inputs.get("attach"):
            continue
        declared = {
            (p.get("ip") or "0.0.0.0", int(p["external"]), int(p["internal"]))
            for p in resource.plain("ports") or []
        }
        actual = bindings(deployment.container(resource.plain("name")))
        assert actual == declared, resource.plain("name")
        for ip, host_port, _ in actual:
            if host_port in OPERATOR_PORTS:
                assert ip == "127.0.0.1", f"{resource.plain('name')} publishes {host_port} on {ip}"


def reachable_from_elsewhere(port: int) -> bool:
    """Whether a connection from a non-loopback address of this machine is accepted."""
    address = non_loopback_address()
    assert address, "this machine has no address but loopback to try from"
    return accepts(address, port)


WRITTEN_ON_DEMAND = frozenset({"/qdrant/snapshots", "/alertmanager", "/backups"})
"""Volume paths that may be empty: Qdrant's snapshots (asked for, then moved to the object
storage), Alertmanager's state (written every 15 minutes), the controller backups' spool (each
dump leaves it once uploaded)."""


def data_volumes_hold_data(deployment: Deployment, written_on_demand: frozenset[str]) -> None:
    """Each named volume holds what its service wrote (a mount at the wrong path leaves it
    empty and the data in the container's own layer, lost with it), but the volumes mounted at
    `written_on_demand` paths, which stay empty until asked for (Qdrant's snapshots) or for a
    while (Alertmanager writes its silences and notification log every 15 minutes)."""
    client = deployment.engine.client
    checked = 0
    for resource in deployment.run.workloads:
        for volume in resource.plain("volumes") or []:
            if volume["containerPath"] in written_on_demand:
                continue
            listing = client.containers.run(
                deployment.engine.built["nginx"],
                ["ls", "-A", "/volume"],
                volumes={volume["volumeName"]: {"bind": "/volume", "mode": "ro"}},
                remove=True,
            )
            assert listing.strip(), f"{resource.plain('name')}: nothing in {volume['volumeName']}"
            checked += 1
    assert checked, "no data volume to check"


def monitoring_sees_the_whole_stack(deployment: Deployment, timeout_s: float = 120.0) -> dict[str, str]:
    """Through the loopback ports: Prometheus scrapes every target of its config and each is
    up (a wrong alias, port, path or token is a target down), the alert rules then evaluate
    to nothing pending (a rule naming a job the config lacks would count zero members),
    Grafana has its datasource working and every dashboard, Alertmanager is ready. Returns
    each target's `job/member` -> health."""
    outputs = deployment.run.outputs
    prometheus, grafana = outputs["prometheusUrl"], outputs["grafanaUrl"]
    config = yaml.safe_load(
        deployment.run.service_files(_service(deployment, "prometheus"))[PROMETHEUS_YML][0]
    )
    static = sum(len(s["targets"]) for job in config["scrape_configs"] for s in job.get("static_configs", []))
    discovered = [job["job_name"] for job in config["scrape_configs"] if job.get("dns_sd_configs")]

    def all_up(active: list[dict]) -> bool:
        jobs = {t["labels"]["job"] for t in active}
        complete = len(active) >= static + len(discovered) and set(discovered) <= jobs
        return complete and all(t["health"] == "up" for t in active)

    active = active_targets(prometheus, all_up, timeout=timeout_s)
    health = {f"{t['labels']['job']}/{t['labels']['member']}": t["health"] for t in active}
    if not all_up(active):
        errors = {
            f"{t['labels']['job']}/{t['labels']['member']}": t["lastError"]
            for t in active
            if t["health"] != "up"
        }
        raise AssertionError(f"not every target is up after {timeout_s:.0f} s: {health} {errors}")
    time.sleep(3 * _seconds(config["global"]["evaluation_interval"]))
    alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    assert alerts == [], f"alerts on a healthy stack: {alerts}"
    auth = ("admin", outputs["grafanaAdminPassword"])
    assert requests.get(f"{grafana}/api/health", timeout=5).json()["database"] == "ok"
    titles = {b["title"] for b in requests.get(f"{grafana}/api/search", auth=auth, timeout=5).json()}
    assert len(titles) == 4 and "rag-infra: the plan's success criteria" in titles, titles
    source = requests.get(f"{grafana}/api/datasources/uid/prometheus/health", auth=auth, timeout=10)
    assert source.status_code == 200, source.text
    assert requests.get(f"{grafana}/api/search", timeout=5).status_code == 401
    assert requests.get(f"{outputs['alertmanagerUrl']}/-/ready", timeout=5).status_code == 200
    return health


PROMETHEUS_YML = "/etc/prometheus/prometheus.yml"


def _service(deployment: Deployment, alias: str):
    return deployment.run.service(f"rag-infra-{deployment.stack}-{alias}")


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))
