"""Shell steps run where a Docker host is: a `pulumi_command.local.Command` with DOCKER_HOST for a
local engine (`unix://`, `tcp://`), a `remote.Command` over SSH on an `ssh://` host (your agent's
key). Secrets go on stdin: a remote shell gets no environment unless its sshd accepts it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pulumi
from pulumi_command import local, remote


def host_command(
    name: str,
    url: str,
    script: pulumi.Input[str],
    *,
    stdin: pulumi.Input[str] | None = None,
    triggers: list[pulumi.Input[str]] | None = None,
    secret_stdout: bool = False,
    opts: pulumi.ResourceOptions,
) -> local.Command | remote.Command:
    """`script` run by the shell of the host at `url` (or against it), once per create or
    change of `triggers`; a non-zero exit fails the resource, and with it `pulumi up`."""
    opts = pulumi.ResourceOptions.merge(
        opts, pulumi.ResourceOptions(additional_secret_outputs=["stdout"] if secret_stdout else None)
    )
    triggers = [url, *(triggers or [])]
    if url.startswith("ssh://"):
        parts = urlsplit(url)
        return remote.Command(
            name,
            connection=remote.ConnectionArgs(host=parts.hostname, user=parts.username, port=parts.port or 22),
            create=script,
            stdin=stdin,
            triggers=triggers,
            opts=opts,
        )
    return local.Command(
        name,
        create=script,
        stdin=stdin,
        environment={"DOCKER_HOST": url},
        triggers=triggers,
        opts=opts,
    )
