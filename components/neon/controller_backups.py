"""ControllerBackups: the storage controller's database dumped on a schedule into the stack's
object storage, and the two halves of its restore.

Two services on the first host, where the database and its volume are, sharing a spool volume:
- `storage-controller-dump` runs `pg_dump` in a loop in the database's own image (the same
  Postgres version, and no image of ours): each complete dump lands in the spool as `<time>.dump`,
  each failure as `<time>.failed` with what `pg_dump` said (render_dump_loop). It also runs the
  restore's `pg_restore` (render_restore_script).
- `storage-controller-backup` runs components/neon/controller_backup.py in the official Python
  image: it uploads each dump with a manifest, keeps the last `keep`, and reports on /metrics; it
  also runs the restore's `fetch` and `reattach`.

`python -m components.neon.controller_restore` drives a restore through the first host's Docker
engine (README "Backups and restore").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

from components.monitoring.scrape import ScrapeJob, ScrapeTarget
from components.neon import controller_backup
from components.neon.settings import ControllerBackupSettings
from components.platform import objectstore
from components.platform.hosts import DockerHosts
from components.platform.scripts import BACKUP_MEMORY_MB, BackupProgram, Bucket, backup_program
from components.platform.service import HealthCheck, Mount, ServiceFile, ServiceSpec

if TYPE_CHECKING:
    from components.settings import StackSettings

UPLOAD_ALIAS = "storage-controller-backup"
DUMP_ALIAS = "storage-controller-dump"
MODULE = controller_backup.__name__
PGPASS_FILE = "/run/secrets/storage-controller-pgpass"
S3_SECRET_FILE = "/run/secrets/storage-controller-backup-s3-secret"  # noqa: S105 (a path)
DUMP_SCRIPT = "/opt/rag-infra/dump-loop.sh"
RESTORE_SCRIPT = "/opt/rag-infra/restore-dump.sh"


def render_dump_loop() -> str:
    """The dump service's shell loop (POSIX sh, as busybox and dash run it). libpq takes the
    server from PGHOST/PGPORT/PGUSER/PGDATABASE and the password from PGPASSFILE; the spool is
    $SPOOL, the interval $EVERY_S seconds. A dump counts once `pg_restore --list` has read it
    whole; until then it is `<time>.partial`, which the uploader never touches. With ONCE=1 it
    makes one dump and exits with its status (a backup now: README "Backups and restore")."""
    return """set -u
dump_once() {
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    part="$SPOOL/$stamp.partial"
    said="$SPOOL/$stamp.said"
    if pg_dump --format=custom --file="$part" 2>"$said" && pg_restore --list "$part" >/dev/null 2>>"$said"
    then
        mv "$part" "$SPOOL/$stamp.dump"
        rm -f "$said"
        echo "dump $stamp: $(wc -c <"$SPOOL/$stamp.dump") bytes"
        return 0
    fi
    rm -f "$part"
    cat "$said" >&2
    mv "$said" "$SPOOL/$stamp.failed"
    echo "dump $stamp failed" >&2
    return 1
}
until pg_isready -q; do sleep 2; done
while :; do
    dump_once
    done=$?
    if [ "${ONCE:-0}" = 1 ]; then exit "$done"; fi
    sleep "$EVERY_S"
done
"""


def render_restore_script() -> str:
    """The restore's database step, run in the dump service's task while the controller is
    stopped: the fetched dump replaces the whole `public` schema in one transaction (the
    controller's tables and diesel's `__diesel_schema_migrations`, so the controller migrates
    from the dump's version on start). A dump that does not read, or a statement that fails,
    leaves the database as it was."""
    return f"""set -eu
dump="$SPOOL/restore/{controller_backup.DUMP_NAME}"
sql="$dump.sql"
pg_restore --list "$dump" >/dev/null
pg_restore --no-owner --no-privileges --file="$sql" "$dump"
PGOPTIONS="-c client_min_messages=warning" psql --no-psqlrc --quiet --output=/dev/null \\
    --set=ON_ERROR_STOP=1 --single-transaction \\
    --command='DROP SCHEMA IF EXISTS public CASCADE' --command='CREATE SCHEMA public' --file="$sql"
rm -f "$sql"
echo "restored $dump into $PGDATABASE"
"""


def render_pgpass(password: str) -> str:
    """A libpq password file for any host, port, database and user (the service reaches one)."""
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    return f"*:*:*:*:{escaped}\n"


def scrape_jobs() -> list[ScrapeJob]:
    """The upload service's /metrics: its last complete backup and its failed rounds."""
    target = ScrapeTarget(f"{UPLOAD_ALIAS}:{objectstore.METRICS_PORT}", UPLOAD_ALIAS)
    return [ScrapeJob("storage-controller-backup", "neon", targets=[target])]


def deployed(settings: StackSettings) -> bool:
    """They run with the Neon tier (whose object storage they write to) unless turned off."""
    return settings.features.neon and settings.neon.controller_backups.enabled


@dataclass(frozen=True)
class ControllerBackupsArgs:
    """The database to dump, and the object storage to write to."""

    settings: ControllerBackupSettings
    hosts: DockerHosts
    postgres_image: pulumi.Input[str]
    """The database's own image: its pg_dump and pg_restore are of the server's version."""
    db_host: str
    db_user: str
    db_name: str
    db_password: pulumi.Output[str]
    store_url: str
    store_user: str
    store_password: pulumi.Output[str]
    neon_bucket: str
    tenants_prefix: str
    """Where the pageserver keeps its tenants in `neon_bucket` (reattach lists them)."""
    controller_url: str
    """The controller's API on the stack network."""


class ControllerBackups(pulumi.ComponentResource):
    """The dump loop and the upload service, on the first host with their spool."""

    def __init__(
        self, name: str, args: ControllerBackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("rag-infra:index:ControllerBackups", name, None, opts)
        settings, hosts = args.settings, args.hosts
        spool = hosts.volume(
            f"{name}-spool",
            "neon-controller-backups",
            "neon",
            pulumi.ResourceOptions(parent=self, provider=hosts.providers[0]),
        )
        mount = Mount(spool.name, controller_backup.SPOOL)
        self.dump = hosts.service(
            f"{name}-dump",
            ServiceSpec(
                alias=DUMP_ALIAS,
                component="neon-controller-dump",
                image=args.postgres_image,
                command=["/bin/sh", DUMP_SCRIPT],
                env={
                    "PGHOST": args.db_host,
                    "PGUSER": args.db_user,
                    "PGDATABASE": args.db_name,
                    "PGPASSFILE": PGPASS_FILE,
                    "SPOOL": controller_backup.SPOOL,
                    "EVERY_S": str(settings.every_hours * 3600),
                },
                files=[
                    ServiceFile(DUMP_SCRIPT, render_dump_loop()),
                    ServiceFile(RESTORE_SCRIPT, render_restore_script()),
                    # libpq ignores a password file others may read.
                    ServiceFile(PGPASS_FILE, args.db_password.apply(render_pgpass), secret=True, mode=0o400),
                ],
                mounts=[mount],
                pinned_to=0,
                memory_mb=BACKUP_MEMORY_MB,
                health=HealthCheck(["CMD", "pg_isready", "-q"], interval="30s"),
            ),
            parent=self,
        )
        self.upload = hosts.service(
            f"{name}-upload",
            backup_program(
                BackupProgram(
                    alias=UPLOAD_ALIAS,
                    component="neon-controller-backup",
                    image=hosts.image_ref(f"{name}-image", settings.image, self),
                    module=controller_backup,
                    args=["watch", "--keep", str(settings.keep)],
                    bucket=Bucket(args.store_url, settings.bucket, args.store_user, args.store_password),
                    password_file=S3_SECRET_FILE,
                    env={
                        "SPOOL": controller_backup.SPOOL,
                        "CONTROLLER_URL": args.controller_url,
                        "NEON_BUCKET": args.neon_bucket,
                        "NEON_TENANTS_PREFIX": args.tenants_prefix,
                    },
                    mounts=[mount],
                )
            ),
            parent=self,
        )
        self.register_outputs({"bucket": settings.bucket, "everyHours": settings.every_hours})
