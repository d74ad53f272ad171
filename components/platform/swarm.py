"""DockerSwarm: the stack's hosts made one Docker Swarm, by the program, idempotently.

The first host becomes a manager (`docker swarm init` when it is in no swarm yet), the others
join it as workers with a join token read as a secret, and every node is labelled
`rag-infra.host.<index>=true` for placement. Each step runs where its host is: a
`pulumi_command.local.Command` against the local engine (`unix://`, DOCKER_HOST), a
`remote.Command` over SSH on an `ssh://` host (a `tcp://` engine is driven locally, like a
socket, through DOCKER_HOST). Nothing runs on destroy: leaving a swarm would
take every other stack on those hosts down with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.platform.commands import host_command

LABEL_PREFIX = "rag-infra.host."
"""Node label `rag-infra.host.<index>=true`: one key per host index, so a node that stands for
several entries of `dockerHosts` (the same engine named twice) carries every one of them."""
LOCAL_ADVERTISE = "127.0.0.1"
"""A local engine is a single-node swarm: it advertises its loopback (no other node joins it)."""


def manager_script(advertise: str | None) -> str:
    """Make the host a manager unless it is one; refuse a worker; print its node ID."""
    init = "docker swarm init" + (f" --advertise-addr {advertise}" if advertise else "")
    return f"""set -eu
state=$(docker info --format '{{{{.Swarm.LocalNodeState}}}} {{{{.Swarm.ControlAvailable}}}}')
case "$state" in
  "active true") ;;
  inactive*) {init} >/dev/null ;;
  *) echo "the first Docker host must be a swarm manager; it is in a swarm as: $state" >&2; exit 1 ;;
esac
docker info --format '{{{{.Swarm.NodeID}}}}'
"""


INVITATION_SCRIPT = """set -eu
printf '%s %s\\n' "$(docker swarm join-token -q worker)" "$(docker info --format '{{.Swarm.NodeAddr}}')"
"""
"""The worker join token and the manager's address (secret: the token lets a host join)."""

WORKER_SCRIPT = """set -eu
read -r token manager
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" != active ]; then
  docker swarm join --token "$token" "$manager:2377" >/dev/null
fi
docker info --format '{{.Swarm.NodeID}}'
"""
"""Join unless already in a swarm; the token comes on stdin, never on a command line."""

LABEL_SCRIPT = f"""set -eu
read -r nodes
index=0
for node in $nodes; do
  docker node update --label-add "{LABEL_PREFIX}$index=true" "$node" >/dev/null
  index=$((index + 1))
done
"""
"""On the manager: label each host's node with its index in `dockerHosts` (node IDs on stdin,
in order: a remote shell gets no environment unless its sshd accepts it)."""


@dataclass(frozen=True)
class DockerSwarmArgs:
    """The hosts, in `dockerHosts` order; the first one is (or becomes) the manager."""

    hosts: Sequence[str]


class DockerSwarm(pulumi.ComponentResource):
    """The swarm the stack's services and overlay network live in."""

    ready: pulumi.Resource
    """Depend on this to run after every node has joined and been labelled."""
    node_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: DockerSwarmArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:DockerSwarm", name, None, opts)
        self._name = name
        hosts = list(args.hosts)
        manager_url = hosts[0]
        # A local engine (a socket) is alone: loopback will do. A remote one (ssh://, tcp://) is
        # reached at an address Docker chooses (it names the candidates when it cannot).
        advertise = LOCAL_ADVERTISE if manager_url.startswith("unix://") else None
        manager = self._command("manager", manager_url, manager_script(advertise))
        self.node_ids = [manager.stdout]
        steps: list[pulumi.Resource] = [manager]
        if len(hosts) > 1:
            invitation = self._command(
                "join-token", manager_url, INVITATION_SCRIPT, secret_stdout=True, depends_on=[manager]
            )
            for index, url in enumerate(hosts[1:], start=1):
                worker = self._command(
                    f"worker-{index}",
                    url,
                    WORKER_SCRIPT,
                    # pulumi-command trims stdout's last newline; `read` needs one (set -e).
                    stdin=pulumi.Output.secret(invitation.stdout.apply(lambda text: text + "\n")),
                    depends_on=[invitation],
                )
                self.node_ids.append(worker.stdout)
                steps.append(worker)
        self.ready = self._command(
            "labels",
            manager_url,
            LABEL_SCRIPT,
            stdin=pulumi.Output.all(*self.node_ids).apply(lambda ids: " ".join(ids) + "\n"),
            depends_on=steps,
        )
        self.register_outputs({"nodeIds": self.node_ids})

    def _command(
        self,
        step: str,
        url: str,
        script: str,
        *,
        stdin: pulumi.Input[str] | None = None,
        secret_stdout: bool = False,
        depends_on: list[pulumi.Resource] | None = None,
    ) -> pulumi.CustomResource:
        return host_command(
            f"{self._name}-{step}",
            url,
            script,
            stdin=stdin,
            secret_stdout=secret_stdout,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
