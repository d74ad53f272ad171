"""Storage controller database backups: the dumps a `pg_dump` loop leaves in a spool folder go to
the stack's object storage with a manifest and retention; the restore fetches one back; and
`reattach` gives the restarted controller every tenant the object storage holds, at a generation
that is safe.

The upload service runs it as `python3 -m components.neon.controller_backup` in the official
`python` image, mounted with components/platform/objectstore.py
(components/neon/controller_backups.py), and `python -m components.neon.controller_restore` runs
its `fetch` and `reattach` there too: the standard library only.

The spool, shared with the dump loop on the same host (controller_backups.render_dump_loop):
`<time>.dump` is a complete dump (renamed from `.partial` once `pg_restore --list` read it);
`<time>.failed` holds what a failed `pg_dump` said; `restore/` is where `fetch` puts a backup.
In the bucket: `storage-controller/<time>/controller.dump`, then its `manifest.json` (size and
SHA-256), written last: a backup without a manifest is never restored.

Why a restored dump alone is not enough (neondatabase/neon storage_controller/src/service.rs,
pageserver/src/tenant/mgr.rs): the dump holds each tenant shard's generation as it was then, and
every pageserver re-attach since has raised it. A pageserver attached at an older generation than
the newest index in the object storage reads stale data or is refused. The controller's
`POST /debug/v1/tenant/<id>/import` scans the tenant in the object storage (through a pageserver)
and creates it at the highest generation found, attached at the next; but for a tenant the
controller already holds, the existing row and its generation are kept. So each tenant is
dropped from the controller's records first (`POST /debug/v1/tenant/<id>/drop`: the pageserver
and the object storage are not touched), imported, and given back the config the restored
database held (an import sets the default config).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from components.platform.objectstore import (
    S3,
    TIME_FORMAT,
    BackupError,
    Metrics,
    backup_times,
    heartbeat_check,
    remove_beyond,
    s3_from_environment,
    wait,
)

PREFIX = "storage-controller/"
DUMP_NAME = "controller.dump"
SPOOL = "/backups"
"""The spool volume's mount point in both services."""
SAVED_CONFIGS = "tenant-configs.json"
"""In the spool's `restore/`: each tenant's config, kept before any tenant is dropped (a
reattach that stops half way finds them there when run again)."""
HEARTBEAT = "/tmp/controller-backup-alive"  # noqa: S108 (the container's own /tmp)
HEALTH = heartbeat_check(HEARTBEAT)
POLL_S = 60
"""How often the upload service looks into the spool."""
STAMP = re.compile(r"\d{8}T\d{6}Z")
SHARD_FOLDER = re.compile(r"([0-9a-f]{32})(?:-[0-9a-f]{4})?/")
"""A tenant shard's folder: `<tenant id>`, or `<tenant id>-<number><count>` in hex
(libs/utils/src/shard.rs, Display for TenantShardId)."""


# -- backups ----------------------------------------------------------------------------------


def upload_pending(
    s3: S3, spool: Path, keep: int, log: Callable[[str], None] = print
) -> tuple[list[str], list[str]]:
    """Upload each complete dump in the spool, oldest first, and remove it there once its
    manifest is written; then keep the newest `keep` backups. Returns the times uploaded and what
    each failed dump said (its marker is removed once reported)."""
    failures = []
    for marker in sorted(spool.glob("*.failed")):
        said = marker.read_text(errors="replace").strip()
        failures.append(f"dump {marker.stem} failed: {said[-500:] or 'no message'}")
        marker.unlink()
    uploaded = []
    for dump in sorted(spool.glob("*.dump")):
        stamp = dump.stem
        if not STAMP.fullmatch(stamp):
            failures.append(f"{dump.name}: not a dump of the loop's (named <time>.dump); left in place")
            continue
        # A controller's tables: kilobytes to a few megabytes, so read at once.
        data = dump.read_bytes()
        s3.put(f"{PREFIX}{stamp}/{DUMP_NAME}", data)
        manifest = {"time": stamp, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        s3.put(f"{PREFIX}{stamp}/manifest.json", json.dumps(manifest, indent=2).encode())
        dump.unlink()
        uploaded.append(stamp)
        log(f"backup {stamp}: {len(data)} bytes: {PREFIX}{stamp}/{DUMP_NAME}")
    if uploaded:
        remove_beyond(s3, PREFIX, keep, log)
    return uploaded, failures


def complete_backups(s3: S3) -> list[str]:
    """The times of the controller backups that have a manifest, oldest first."""
    return backup_times(s3, PREFIX)


def fetch(s3: S3, target: Path, backup: str | None = None) -> str:
    """Write the latest complete backup (or the one of `backup`) to `target`, checked against its
    manifest; returns its time. Nothing is written when it does not match."""
    times = complete_backups(s3)
    if not times:
        raise BackupError(f"no complete controller backup in the object storage (no manifest under {PREFIX})")
    chosen = backup or times[-1]
    if chosen not in times:
        raise BackupError(f"no complete controller backup at {chosen}; there are: {', '.join(times)}")
    manifest = json.loads(s3.get(f"{PREFIX}{chosen}/manifest.json"))
    data = s3.get(f"{PREFIX}{chosen}/{DUMP_NAME}")
    if len(data) != manifest["bytes"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise BackupError(
            f"the controller backup of {chosen} does not match its manifest "
            f"({len(data)} bytes, {manifest['bytes']} listed, or another SHA-256): not restored"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    partial.rename(target)
    return chosen


# -- re-attaching the tenants -----------------------------------------------------------------


@dataclass(frozen=True)
class Controller:
    """The storage controller's HTTP API (run with `--dev`: no token)."""

    url: str

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        parts = urllib.parse.urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.netloc, timeout=120)
        data = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=data, headers={"content-type": "application/json"})
        answer = connection.getresponse()
        raw = answer.read()
        try:
            return answer.status, json.loads(raw) if raw else None
        except ValueError:
            return answer.status, raw.decode(errors="replace")

    @staticmethod
    def message(answer: object) -> object:
        """What an error answer says: Neon's `{"msg": ...}`, else the body as it came."""
        return answer.get("msg", answer) if isinstance(answer, dict) else answer

    def ok(self, method: str, path: str, body: object | None = None) -> object:
        status, answer = self.call(method, path, body)
        if status // 100 != 2:
            raise BackupError(f"controller {method} {path}: HTTP {status}: {self.message(answer)}")
        return answer

    def wait_ready(self, timeout_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        """Until `GET /ready` answers 200 (the controller has loaded its database and started)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.call("GET", "/ready")[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BackupError(f"the controller at {self.url} was not ready within {timeout_s:.0f} s")
            sleep(1)


def tenants_in_storage(neon: S3, tenants_prefix: str) -> list[str]:
    """The tenant ids with a shard folder under the pageserver's `tenants/` prefix."""
    found = {
        m[1] for key in neon.keys(tenants_prefix) if (m := SHARD_FOLDER.match(key[len(tenants_prefix) :]))
    }
    return sorted(found)


def _import(controller: Controller, tenant: str, attempts: int, sleep: Callable[[float], None]) -> dict:
    """`import`, again while the controller has no available pageserver yet (just restarted: it
    marks nodes available after their first heartbeat) or answers 503."""
    path = f"/debug/v1/tenant/{tenant}/import"
    for attempt in range(1, attempts + 1):
        status, answer = controller.call("POST", path)
        if status == 200 and isinstance(answer, dict):
            return answer
        message = Controller.message(answer)
        waiting = status == 503 or (status == 400 and "No nodes available" in str(message))
        if not waiting or attempt == attempts:
            raise BackupError(f"controller POST {path}: HTTP {status}: {message}")
        sleep(2)
    raise AssertionError("unreachable")


def reattach(
    controller: Controller,
    neon: S3,
    tenants_prefix: str,
    saved: Path,
    log: Callable[[str], None] = print,
    attempts: int = 30,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict]:
    """Every tenant the object storage holds: its config kept, dropped from the controller's
    records, imported from the object storage at its highest generation, its config set again.
    Returns what each got: tenant, generation, config restored or not."""
    tenants = tenants_in_storage(neon, tenants_prefix)
    configs: dict[str, dict] = json.loads(saved.read_text()) if saved.exists() else {}
    for tenant in tenants:
        status, answer = controller.call("GET", f"/v1/tenant/{tenant}/config")
        if status == 200 and isinstance(answer, dict):
            configs[tenant] = answer["tenant_specific_overrides"]
        elif status != 404:
            raise BackupError(f"controller GET /v1/tenant/{tenant}/config: HTTP {status}: {answer}")
    saved.parent.mkdir(parents=True, exist_ok=True)
    partial = saved.with_name(saved.name + ".partial")
    partial.write_text(json.dumps(configs, indent=2))
    partial.rename(saved)
    results = []
    for tenant in tenants:
        controller.ok("POST", f"/debug/v1/tenant/{tenant}/drop")
        created = _import(controller, tenant, attempts, sleep)
        generation = max(shard["generation"] for shard in created["shards"])
        config = configs.get(tenant)
        if config is not None:
            controller.ok("PUT", "/v1/tenant/config", {"tenant_id": tenant, **config})
        log(
            f"tenant {tenant}: imported from the object storage at generation {generation}, "
            f"{len(created['shards'])} shard(s); "
            + ("its config set again" if config is not None else "no config was on record: the default")
        )
        results.append({"tenant": tenant, "generation": generation, "config": config is not None})
    saved.unlink()
    return results


# -- the upload service and the restore's steps -----------------------------------------------


def _latest_time(times: list[str]) -> float:
    if not times:
        return 0.0
    moment = datetime.datetime.strptime(times[-1], TIME_FORMAT).replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="controller_backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    watch = commands.add_parser("watch", help="upload the spool's dumps as they come, keeping --keep")
    watch.add_argument("--keep", type=int, required=True)
    upload = commands.add_parser("upload", help="upload the spool's dumps now, keeping --keep")
    upload.add_argument("--keep", type=int, required=True)
    commands.add_parser("list", help="the complete backups: time and size")
    fetch_command = commands.add_parser(
        "fetch", help="write the latest backup (or --backup) into the spool's restore/"
    )
    fetch_command.add_argument("--backup", help="a backup time, YYYYMMDDTHHMMSSZ")
    commands.add_parser("reattach", help="drop and import every tenant the object storage holds")
    args = parser.parse_args(argv)
    s3 = s3_from_environment()
    spool = Path(os.environ.get("SPOOL", SPOOL))
    if args.command == "list":
        for stamp in complete_backups(s3):
            manifest = json.loads(s3.get(f"{PREFIX}{stamp}/manifest.json"))
            print(stamp, f"{manifest['bytes']} bytes")
        return 0
    if args.command == "fetch":
        try:
            chosen = fetch(s3, spool / "restore" / DUMP_NAME, args.backup)
        except (BackupError, OSError) as err:
            print(f"fetch: {err}", file=sys.stderr)
            return 1
        print(chosen)
        return 0
    if args.command == "reattach":
        controller = Controller(os.environ["CONTROLLER_URL"])
        neon = replace(s3, bucket=os.environ["NEON_BUCKET"])
        try:
            controller.wait_ready(180)
            saved = spool / "restore" / SAVED_CONFIGS
            done = reattach(controller, neon, os.environ["NEON_TENANTS_PREFIX"], saved)
        except (BackupError, OSError) as err:
            print(f"reattach: {err}", file=sys.stderr)
            return 1
        print(f"reattach: {len(done)} tenant(s) imported from the object storage")
        return 0
    if args.command == "upload":
        try:
            s3.ensure_bucket()
            uploaded, failures = upload_pending(s3, spool, args.keep)
        except (BackupError, OSError) as err:
            print(f"upload: {err}", file=sys.stderr)
            return 1
        for failure in failures:
            print(failure, file=sys.stderr)
        if not uploaded and not failures:
            print("upload: no complete dump in the spool", file=sys.stderr)
        return 1 if failures or not uploaded else 0
    metrics = Metrics("neon_controller_backup")
    metrics.serve()
    while True:
        try:
            s3.ensure_bucket()
            _, failures = upload_pending(s3, spool, args.keep)
            for failure in failures:
                print(failure, file=sys.stderr, flush=True)
            times = complete_backups(s3)
            metrics.failures += len(failures)
            metrics.last_success = _latest_time(times)
            metrics.kept = len(times)
        except (BackupError, OSError) as err:
            # The dump stays in the spool: the next look uploads it.
            metrics.failures += 1
            print(f"upload failed: {err}", file=sys.stderr, flush=True)
        wait(POLL_S, HEARTBEAT)


if __name__ == "__main__":
    sys.exit(main())
