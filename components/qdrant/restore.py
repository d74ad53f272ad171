"""`python -m components.qdrant.restore`: bring a collection back from the stack's backups.

The restore runs inside the backup service's task on the first host (the service has the
stack network, where each Qdrant node is reached by its own name, and the secrets): this
command finds that task through the host's Docker engine and runs
`python3 -m components.qdrant.snapshots restore` there, printing what it prints. `--list`
shows the complete backups.

    python -m components.qdrant.restore --stack prod --list
    python -m components.qdrant.restore --stack prod --collection docs_index_mxbai
    python -m components.qdrant.restore --stack prod --collection docs_index_mxbai --snapshot 20261127T030000Z

Exit 0 when the collection holds the manifest's point count again, 1 when the restore failed
(the reason printed), 2 when the stack or its backup service cannot be found.
"""

from __future__ import annotations

import argparse
import sys

import docker
from docker.models.containers import Container

from components.platform.engine import engine, service_tasks
from components.platform.settings import SettingsError
from components.qdrant.backups import ALIAS, MODULE


def backup_task(host: str, service: str) -> Container:
    """The running container of the backup service on `host` (it is pinned there)."""
    running = service_tasks(engine(host), service)
    if not running:
        raise LookupError(
            f"no running task of {service} on {host}: is qdrant.backups.enabled (and the Neon tier, "
            "whose object storage holds the backups) deployed?"
        )
    return running[0]


def main(argv: list[str] | None = None) -> int:
    from policies.program import stack_settings

    parser = argparse.ArgumentParser(
        prog="python -m components.qdrant.restore", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True, help="stack whose Pulumi.<stack>.yaml names the hosts")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--collection", help="the collection to restore")
    what.add_argument("--list", action="store_true", help="list the complete backups")
    parser.add_argument(
        "--snapshot", help="the backup time to restore (YYYYMMDDTHHMMSSZ); default: the latest"
    )
    args = parser.parse_args(argv)
    try:
        settings = stack_settings(args.stack)
        task = backup_task(settings.docker_hosts[0], f"{settings.prefix}-{ALIAS}")
    except (OSError, SettingsError, LookupError, docker.errors.DockerException) as err:
        print(f"restore: {err}", file=sys.stderr)
        return 2
    command = (
        ["python3", "-m", MODULE, "list"]
        if args.list
        else ["python3", "-m", MODULE, "restore", "--collection", args.collection]
    )
    if args.snapshot and not args.list:
        command += ["--snapshot", args.snapshot]
    result = task.exec_run(command, demux=True)
    out, err = result.output
    sys.stdout.write((out or b"").decode())
    sys.stderr.write((err or b"").decode())
    return 0 if result.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
