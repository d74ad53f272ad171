"""The Docker engines of the stack's hosts as the operator commands reach them (the restore
commands, the failover drill): a host URL of `dockerHosts`, `ssh://` through the ssh client as
Pulumi's Docker provider does, and the task containers Swarm runs there for a service."""

from __future__ import annotations

import docker
from docker.models.containers import Container

SERVICE_LABEL = "com.docker.swarm.service.name"
"""Swarm labels each task container with its service's name."""


def engine(host: str) -> docker.DockerClient:
    """The Docker engine of `host`."""
    return docker.DockerClient(base_url=host, use_ssh_client=host.startswith("ssh://"))


def service_tasks(client: docker.DockerClient, service: str) -> list[Container]:
    """The running containers of a Swarm service's tasks on this engine."""
    return client.containers.list(filters={"label": f"{SERVICE_LABEL}={service}"})
