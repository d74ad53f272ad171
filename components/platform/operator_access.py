"""OperatorAccess: the stack's admin and operator ports on the first host's loopback.

Swarm publishes a service's port on every interface of a node; it has no bind address. So no
service publishes an admin port (Kong's admin API and status listener, later the storage
tier's HTTP ports). Instead, one small plain container on the manager joins the stack's
(attachable) overlay network and publishes each of those ports on 127.0.0.1 only, forwarding
it over the overlay to the service that listens on it: operators, `python -m verify` and the
program's dynamic resources reach `127.0.0.1:<port>` on that host (over an SSH tunnel from
elsewhere, `python -m components.platform.tunnels`).

The forwarder is nginx's stream module (built into the official image), its configuration a
pure renderer below; names are resolved through Docker's DNS on each connection, so a service
task that moved to another node is reached at its new address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.platform.hosts import DockerHosts

LOOPBACK = "127.0.0.1"
DOCKER_DNS = "127.0.0.11"
ALIAS = "operator-access"


@dataclass(frozen=True)
class Forward:
    """`127.0.0.1:<port>` on the manager -> `<target>:<target_port>` on the stack network."""

    port: int
    target: str
    target_port: int
    what: str
    """What listens there, for the config's comments and the error messages."""


def render_operator_access_conf(forwards: Sequence[Forward], pid_path: str = "/var/run/nginx.pid") -> str:
    """nginx.conf: one stream server per forward, resolving its target on each connection."""
    if not forwards:
        raise ValueError("operator access needs at least one port to forward")
    ports = [f.port for f in forwards]
    if len(set(ports)) != len(ports):
        taken = sorted({p for p in ports if ports.count(p) > 1})
        raise ValueError(f"operator ports forwarded twice: {taken}")
    lines = [
        "# Rendered by rag-infra (components/platform/operator_access.py). Do not edit by hand.",
        "worker_processes 1;",
        f"pid {pid_path};",
        "error_log stderr warn;",
        "",
        "events {",
        "    worker_connections 256;",
        "}",
        "",
        "stream {",
        # A variable target is resolved when a connection comes, not when nginx starts: the
        # forwarder starts before (and outlives) the services it points at.
        f"    resolver {DOCKER_DNS} valid=10s ipv6=off;",
    ]
    for forward in sorted(forwards, key=lambda f: f.port):
        lines += [
            "",
            f"    # {forward.what}",
            "    server {",
            f"        listen {forward.port};",
            f"        set $target {forward.target}:{forward.target_port};",
            "        proxy_pass $target;",
            "        proxy_connect_timeout 5s;",
            "    }",
        ]
    lines += ["}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class OperatorAccessArgs:
    """The ports to forward and the image to forward them with (an nginx with `stream`)."""

    hosts: DockerHosts
    forwards: Sequence[Forward]
    image: str
    memory_mb: int | None = 64


class OperatorAccess(pulumi.ComponentResource):
    """A plain container on the manager publishing the operator ports on its loopback."""

    container: docker.Container

    def __init__(
        self, name: str, args: OperatorAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rag-infra:index:OperatorAccess", name, None, opts)
        hosts = args.hosts
        child = pulumi.ResourceOptions(parent=self, provider=hosts.providers[0])
        image = hosts.pull(f"{name}-image", args.image, child)
        self.container = docker.Container(
            f"{name}-container",
            name=f"{hosts.prefix}-{ALIAS}",
            image=image.image_id,
            uploads=[
                docker.ContainerUploadArgs(
                    file="/etc/nginx/nginx.conf", content=render_operator_access_conf(args.forwards)
                )
            ],
            ports=[
                docker.ContainerPortArgs(internal=f.port, external=f.port, ip=LOOPBACK) for f in args.forwards
            ],
            networks_advanced=hosts.attach(ALIAS),
            restart="always",
            memory=args.memory_mb,
            healthcheck=docker.ContainerHealthcheckArgs(
                # The master process is alive (a stream server has no HTTP endpoint to ask).
                tests=["CMD-SHELL", 'kill -0 "$(cat /var/run/nginx.pid)"'],
                interval="10s",
                timeout="5s",
                retries=3,
            ),
            labels=hosts.labels("operator-access"),
            opts=child,
        )
        self.register_outputs({"ports": [f.port for f in args.forwards]})
