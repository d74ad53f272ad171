"""SSH tunnels to the operator ports a stack keeps on its hosts' loopback.

    python -m components.platform.tunnels --stack prod [--run]

Swarm services cannot publish on loopback, so OperatorAccess publishes every operator port
(the storage controller, the pageserver, each safekeeper's API, Kong's admin and status ports)
on 127.0.0.1 of the first host (components/platform/operator_access.py). `pulumi up` (the Neon
dynamic resources) and operators reach them through SSH port forwards from the machine that
runs Pulumi. This prints the `ssh -f -N -L …` command for the first host when it is an ssh://
host, forwarding each port to the same local port, as the stack's outputs name them; `--run`
starts it (and fails when it cannot). The workflow in .github/workflows/pulumi.yml runs it
before every preview and deploy.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from urllib.parse import urlsplit

from components.operator_forwards import stack_operator_forwards
from components.platform.settings import SettingsError
from components.settings import StackSettings


def forwards(settings: StackSettings) -> dict[str, list[int]]:
    """ssh:// host URL -> the loopback ports of that host the program or an operator needs:
    OperatorAccess's, all on the first host."""
    first = settings.docker_hosts[0]
    ports = [forward.port for forward in stack_operator_forwards(settings)]
    return {first: sorted(set(ports))} if first.startswith("ssh://") and ports else {}


def ssh_commands(settings: StackSettings) -> list[list[str]]:
    """One backgrounded `ssh -N` with every forward of a host, per ssh:// host."""
    commands = []
    for url, ports in forwards(settings).items():
        parts = urlsplit(url)
        target = f"{parts.username}@{parts.hostname}" if parts.username else str(parts.hostname)
        command = ["ssh", "-f", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes"]
        if parts.port:
            command += ["-p", str(parts.port)]
        for port in ports:
            command += ["-L", f"127.0.0.1:{port}:127.0.0.1:{port}"]
        commands.append([*command, target])
    return commands


def main(argv: list[str] | None = None) -> int:
    from policies.program import stack_settings

    parser = argparse.ArgumentParser(
        prog="python -m components.platform.tunnels", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True, help="stack whose Pulumi.<stack>.yaml names the hosts")
    parser.add_argument("--run", action="store_true", help="start the tunnels instead of printing them")
    args = parser.parse_args(argv)
    try:
        settings = stack_settings(args.stack)
    except (OSError, SettingsError) as err:
        print(f"tunnels: {err}", file=sys.stderr)
        return 2
    for command in ssh_commands(settings):
        if not args.run:
            print(shlex.join(command))
            continue
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            print(f"tunnels: {shlex.join(command)}: {result.stderr.strip()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
