"""OneShotJob: a container run to completion on the stack's first host; its exit code decides.

The Docker provider's `attach` waits for a container to stop and drops its exit code (see
e2e/apply.py), and with a restart policy it returns at the first failed attempt: a job that
failed let `pulumi up` go on. Here the job is `docker run --rm` in a host command
(components/platform/commands.py): retried a few times while what it needs starts, and a
last failure fails the resource, with the job's output, and with it `pulumi up`. Its
environment, secrets included, reaches `docker run --env-file /dev/stdin` on stdin: never on a
command line, in the host's environment or on disk.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from components.platform.commands import host_command
from components.platform.hosts import DockerHosts

RETRY_PAUSE_S = 2


def job_script(
    name: str, network: str, image: str, script: str, labels: Mapping[str, str], attempts: int
) -> str:
    """The host's side: read the env file from stdin once, then `docker run` up to `attempts`
    times; exit 0 at the first success, 1 after the last failure."""
    label_flags = " ".join(f"--label {shlex.quote(f'{k}={v}')}" for k, v in labels.items())
    run = (
        f"docker run --rm --name {shlex.quote(name)} --network {shlex.quote(network)} {label_flags} "
        f"--env-file /dev/stdin --entrypoint sh {shlex.quote(image)} -c {shlex.quote(script)}"
    )
    return f"""set -eu
envs=$(cat)
attempt=1
while :; do
  # One left over by an interrupted run would hold the name.
  docker rm -f {shlex.quote(name)} >/dev/null 2>&1 || true
  if printf '%s\\n' "$envs" | {run}; then exit 0; fi
  if [ "$attempt" -ge {attempts} ]; then
    echo "{name}: failed {attempts} times" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep {RETRY_PAUSE_S}
done
"""


@dataclass(frozen=True, kw_only=True)
class OneShotJobArgs:
    """What runs, with what, and how often it may fail before it counts."""

    hosts: DockerHosts
    image: pulumi.Input[str]
    """An image ID on the first host (a `RemoteImage.image_id`)."""
    script: str
    """Run by `sh -c` in the image."""
    env: Mapping[str, pulumi.Input[str]]
    """Its environment; values may be secrets (one line each)."""
    attempts: int
    component: str


class OneShotJob(pulumi.ComponentResource):
    """A job Pulumi waits for, which fails the update when it fails."""

    command: pulumi.CustomResource

    def __init__(self, name: str, args: OneShotJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("rag-infra:index:OneShotJob", name, None, opts)
        hosts = args.hosts
        docker_name = f"{hosts.prefix}-{args.component}"
        labels = hosts.label_pairs(args.component)
        script = pulumi.Output.all(hosts.network_name, args.image).apply(
            lambda values: job_script(docker_name, values[0], values[1], args.script, labels, args.attempts)
        )
        keys = sorted(args.env)
        env_file = pulumi.Output.secret(
            pulumi.Output.all(*(args.env[k] for k in keys)).apply(
                lambda values: "".join(f"{k}={v}\n" for k, v in zip(keys, values, strict=True))
            )
        )
        self.command = host_command(
            f"{name}-run",
            hosts.url(0),
            script,
            stdin=env_file,
            # A changed environment (a new password, a new kong.yml) runs the job again.
            triggers=[env_file],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"name": docker_name})
