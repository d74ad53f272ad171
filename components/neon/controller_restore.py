"""`python -m components.neon.controller_restore`: bring the storage controller's database back
from the stack's backups, then give the controller every tenant the object storage holds.

Through the first host's Docker engine (where the database, its dump service and the upload
service run), in this order:
1. `fetch` in the upload service's task: the backup (latest, or `--backup`) into the spool,
   checked against its manifest. Nothing is touched when it fails.
2. The controller service scaled to 0, and its task gone: nothing writes to the database.
3. The restore script in the dump service's task: the dump replaces the database's schema in one
   transaction (a failure leaves the database as it was).
4. The controller scaled back to 1, whatever step 3 did.
5. `reattach` in the upload service's task: each tenant under the pageserver's prefix is dropped
   from the controller's records, imported from the object storage at its highest generation, and
   its config from the restored database set again (components/neon/controller_backup.py says
   why a restored database alone is not enough).

    python -m components.neon.controller_restore --stack prod --list
    python -m components.neon.controller_restore --stack prod
    python -m components.neon.controller_restore --stack prod --backup 20261127T030000Z

Exit 0 when every tenant is imported again, 1 when a step failed (the step and its reason
printed; the controller is running again), 2 when the stack or its services cannot be found.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import docker

from components.neon.config import CONTROLLER_ALIAS
from components.neon.controller_backups import DUMP_ALIAS, MODULE, RESTORE_SCRIPT, UPLOAD_ALIAS
from components.platform.engine import engine, service_tasks
from components.platform.settings import SettingsError

STOP_TIMEOUT_S = 120


class RestoreError(RuntimeError):
    """A step failed; the message says which and why."""


class Restore:
    """The restore's steps against one Docker engine (the Swarm manager, host 0)."""

    def __init__(self, client: docker.DockerClient, prefix: str, out: Callable[[str], None] = print) -> None:
        self.client = client
        self.prefix = prefix
        self.out = out

    def task(self, alias: str) -> docker.models.containers.Container:
        """The running container of `<prefix>-<alias>` on this host (the services are pinned there)."""
        service = f"{self.prefix}-{alias}"
        running = service_tasks(self.client, service)
        if not running:
            raise LookupError(
                f"no running task of {service} on this host: is neon.controllerBackups.enabled "
                "(and the Neon tier) deployed?"
            )
        return running[0]

    def run(self, alias: str, command: list[str], step: str) -> str:
        """`command` in the task of `alias`; its output printed; RestoreError when it fails."""
        result = self.task(alias).exec_run(command, demux=True)
        out, err = (part.decode() if part else "" for part in result.output)
        for line in (out + err).splitlines():
            self.out(f"  {line}")
        if result.exit_code != 0:
            raise RestoreError(f"{step} failed (exit {result.exit_code})")
        return out

    def controller_replicas(self, replicas: int, sleep: Callable[[float], None] = time.sleep) -> None:
        """Scale the controller service; at 0, wait until its task has stopped."""
        service = self.client.services.get(f"{self.prefix}-{CONTROLLER_ALIAS}")
        service.scale(replicas)
        if replicas:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(t["Status"]["State"] == "running" for t in service.tasks()):
            if time.monotonic() > deadline:
                raise RestoreError(f"the controller's task did not stop within {STOP_TIMEOUT_S} s")
            sleep(1)

    def list(self) -> None:
        self.run(UPLOAD_ALIAS, ["python3", "-m", MODULE, "list"], "list")

    def restore(self, backup: str | None) -> None:
        started = time.monotonic()

        def step(text: str) -> None:
            self.out(f"[{time.monotonic() - started:5.1f} s] {text}")

        fetch = ["python3", "-m", MODULE, "fetch", *(["--backup", backup] if backup else [])]
        step("1/5 fetching the backup into the spool")
        chosen = self.run(UPLOAD_ALIAS, fetch, "fetch").strip()
        step(f"2/5 stopping the storage controller (restoring {chosen})")
        self.controller_replicas(0)
        try:
            step("3/5 restoring the database")
            self.run(DUMP_ALIAS, ["/bin/sh", RESTORE_SCRIPT], "the database restore")
        finally:
            step("4/5 starting the storage controller")
            self.controller_replicas(1)
        step("5/5 importing every tenant of the object storage")
        self.run(UPLOAD_ALIAS, ["python3", "-m", MODULE, "reattach"], "reattach")
        step(f"restored {chosen}")


def main(argv: list[str] | None = None) -> int:
    from policies.program import stack_settings

    parser = argparse.ArgumentParser(
        prog="python -m components.neon.controller_restore", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--stack", required=True, help="stack whose Pulumi.<stack>.yaml names the hosts")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the complete backups")
    what.add_argument("--backup", help="the backup time to restore (YYYYMMDDTHHMMSSZ); default: the latest")
    args = parser.parse_args(argv)
    try:
        settings = stack_settings(args.stack)
        restore = Restore(engine(settings.docker_hosts[0]), settings.prefix)
        restore.task(UPLOAD_ALIAS)
        restore.task(DUMP_ALIAS)
    except (OSError, SettingsError, LookupError, docker.errors.DockerException) as err:
        print(f"controller restore: {err}", file=sys.stderr)
        return 2
    try:
        if args.list:
            restore.list()
        else:
            restore.restore(args.backup)
    except (RestoreError, docker.errors.DockerException) as err:
        print(f"controller restore: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
