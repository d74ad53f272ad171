"""Docker hosts and the stack network: one provider per host, one network per stack."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_docker as docker

from components.platform.secrets import secret_or_generated
from components.platform.service import ServiceSpec, SwarmService, SwarmServiceArgs
from components.platform.swarm import DockerSwarm, DockerSwarmArgs

# ssh:// hosts are usually reached non-interactively (CI, a laptop with an agent): fail fast
# instead of waiting on a password prompt.
SSH_OPTS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]


def reachable_host(docker_host: str) -> str:
    """The address at which ports published on `docker_host` are reached from this machine."""
    parts = urlsplit(docker_host)
    if parts.scheme in ("unix", "npipe"):
        return "localhost"
    return parts.hostname or "localhost"


def service_image(reference: str, repo_digest: str) -> str:
    """What a service runs for `reference`: the registry digest the manager pulled, so every
    node pulls the same bytes. An image with no registry digest exists only where it was built
    or loaded: it is run by name and tag, without the reference's digest (a digest names
    registry content only, and Docker would look for it there)."""
    return repo_digest or reference.split("@", 1)[0]


def round_robin(count: int, slots: int) -> list[int]:
    """Slot index for each of `count` quorum members, spread evenly over `slots` hosts."""
    if slots < 1:
        raise ValueError("round_robin needs at least one slot")
    return [member % slots for member in range(count)]


@dataclass(frozen=True)
class DockerHostsArgs:
    """Where the stack runs."""

    project: str
    """Project name, first part of every Docker object name."""
    stack: str
    """Stack name, second part of every Docker object name and of the labels."""
    hosts: Sequence[str]
    """Docker host URLs (`unix://…`, `ssh://user@host`); the program makes them one swarm."""
    retain_volumes: bool = False
    """Keep every data volume when its resource is deleted (prod): `pulumi destroy` then rolls
    back the services and leaves the data; README "Rolling back" says how to remove it."""


class DockerHosts(pulumi.ComponentResource):
    """The Docker providers of a stack, the swarm its hosts form, and the network its
    containers share.

    The hosts are made one Docker Swarm by the program (components/platform/swarm.py; a
    single-node swarm for one host), and the stack network is an attachable, encrypted overlay
    created on the first host, the manager: one path for dev and prod, and the network Swarm
    services need. Docker's DNS resolves names and aliases on it.
    """

    providers: list[docker.Provider]
    network: docker.Network
    network_name: pulumi.Output[str]

    def __init__(self, name: str, args: DockerHostsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:DockerHosts", name, None, opts)
        self._args = args
        self.providers = [
            docker.Provider(
                f"{name}-host-{index}",
                host=url,
                ssh_opts=SSH_OPTS if url.startswith("ssh://") else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for index, url in enumerate(args.hosts)
        ]
        self.swarm = DockerSwarm(
            f"{name}-swarm", DockerSwarmArgs(hosts=args.hosts), pulumi.ResourceOptions(parent=self)
        )
        self.network_driver = "overlay"
        self.network = docker.Network(
            f"{name}-network",
            name=self.prefix,
            driver=self.network_driver,
            attachable=True,  # plain containers join it (every tier's today)
            # IPsec between the hosts: service traffic never crosses the wire in clear.
            options={"encrypted": ""},
            labels=[
                docker.NetworkLabelArgs(label=key, value=value)
                for key, value in self.label_pairs("network").items()
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=self.providers[0],
                depends_on=[self.swarm.ready],
                # A changed network keeps its name, which Docker holds until the old one is gone:
                # delete it first. The engine then replaces the containers attached to it too
                # (their network input is unknown until the new one exists); volumes stay.
                delete_before_replace=True,
            ),
        )
        self.network_name = self.network.name
        # Keys the digests in Swarm config and secret names (components/platform/service.py).
        self.object_salt = secret_or_generated(f"{name}-object-salt", None, parent=self)
        self.register_outputs(
            {
                "networkName": self.network_name,
                "networkDriver": self.network_driver,
                "hostCount": len(self.providers),
            }
        )

    @property
    def prefix(self) -> str:
        """Prefix of Docker object names, so several stacks can share one host."""
        return f"{self._args.project}-{self._args.stack}"

    @property
    def host_count(self) -> int:
        return len(self.providers)

    def reachable_host(self, index: int) -> str:
        """Where ports published on host `index` are reached from the machine running Pulumi."""
        return reachable_host(self._args.hosts[index])

    def public_urls(self, port: int, scheme: str = "http") -> list[pulumi.Output[str]]:
        """`<scheme>://<host>:<port>` on every host, for a service published there in host mode."""
        return [
            pulumi.Output.from_input(f"{scheme}://{self.reachable_host(i)}:{port}")
            for i in range(self.host_count)
        ]

    def url(self, index: int) -> str:
        """The Docker host URL of host `index`."""
        return self._args.hosts[index]

    def label_pairs(self, component: str) -> dict[str, str]:
        """The labels naming the stack and the component, as a map."""
        return {
            "rag-infra.project": self._args.project,
            "rag-infra.stack": self._args.stack,
            "rag-infra.component": component,
        }

    def labels(self, component: str) -> list[docker.ContainerLabelArgs]:
        """Labels naming the stack and the component, for every container."""
        return [
            docker.ContainerLabelArgs(label=key, value=value)
            for key, value in self.label_pairs(component).items()
        ]

    def volume_labels(self, component: str) -> list[docker.VolumeLabelArgs]:
        """The same labels for named volumes."""
        return [
            docker.VolumeLabelArgs(label=key, value=value)
            for key, value in self.label_pairs(component).items()
        ]

    def volume(
        self, resource_name: str, docker_name: str, component: str, opts: pulumi.ResourceOptions
    ) -> docker.Volume:
        """A labelled named volume `<prefix>-<docker_name>`; `opts` carries parent and provider."""
        return docker.Volume(
            resource_name,
            name=f"{self.prefix}-{docker_name}",
            labels=self.volume_labels(component),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(retain_on_delete=self._args.retain_volumes)
            ),
        )

    def pull(self, resource_name: str, image: str, opts: pulumi.ResourceOptions) -> docker.RemoteImage:
        """Pull `image` on the host of `opts.provider`; kept when the stack goes (other stacks may use it)."""
        return docker.RemoteImage(resource_name, name=image, keep_locally=True, opts=opts)

    def image_ref(self, resource_name: str, image: str, parent: pulumi.Resource) -> pulumi.Output[str]:
        """`image` pulled on the manager, as a service runs it (`service_image`)."""
        pulled = self.pull(
            resource_name, image, pulumi.ResourceOptions(parent=parent, provider=self.providers[0])
        )
        return pulled.repo_digest.apply(lambda digest: service_image(image, digest))

    def service(
        self,
        resource_name: str,
        spec: ServiceSpec,
        parent: pulumi.Resource,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> SwarmService:
        """`spec` as a Swarm service on the stack network, created through the manager."""
        return SwarmService(
            resource_name,
            SwarmServiceArgs(
                spec=spec,
                prefix=self.prefix,
                network=self.network.id,
                labels=self.label_pairs(spec.component),
                provider=self.providers[0],
                salt=self.object_salt,
                depends_on=[self.swarm.ready, *depends_on],
            ),
            pulumi.ResourceOptions(parent=parent),
        )

    def attach(self, alias: str) -> list[docker.ContainerNetworksAdvancedArgs]:
        """Join the stack network under a stable DNS name."""
        return [docker.ContainerNetworksAdvancedArgs(name=self.network_name, aliases=[alias])]
