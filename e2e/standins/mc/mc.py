#!/usr/bin/python3
"""Stand-in for the MinIO client: `alias set NAME URL KEY SECRET` (checked against the server,
as mc does), `mb [--ignore-existing] [--region=R] ALIAS/BUCKET`, and `ready ALIAS` (`local` is
mc's built-in alias for http://localhost:9000). Aliases live in $MC_CONFIG_DIR (default ~/.mc)/config.json."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, "/opt/standin")
from standin import s3_authorization

CONFIG = Path(os.environ.get("MC_CONFIG_DIR", Path.home() / ".mc")) / "config.json"


def fail(message: str) -> None:
    print(f"mc: <ERROR> {message}", file=sys.stderr)
    sys.exit(1)


def aliases() -> dict:
    base = {"local": {"url": "http://localhost:9000", "accessKey": "", "secretKey": ""}}
    if CONFIG.exists():
        base |= json.loads(CONFIG.read_text())["aliases"]
    return base


def request(alias: dict, method: str, path: str) -> int:
    req = urllib.request.Request(
        alias["url"].rstrip("/") + path,
        method=method,
        headers={"Authorization": s3_authorization(alias["accessKey"], alias["secretKey"])},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError as err:
        fail(f"Unable to reach {alias['url']}: {err}")
        return 0


def main(argv: list[str]) -> None:
    if argv[:2] == ["alias", "set"] and len(argv) == 6:
        name, url, key, secret = argv[2:]
        alias = {"url": url, "accessKey": key, "secretKey": secret}
        if request(alias, "GET", "/") != 200:
            fail(f"Unable to initialize new alias from the provided credentials for {url}")
        CONFIG.parent.mkdir(parents=True, exist_ok=True)
        known = aliases() | {name: alias}
        CONFIG.write_text(json.dumps({"version": "10", "aliases": known}))
        print(f"Added `{name}` successfully.")
    elif argv[:1] == ["mb"]:
        flags = [a for a in argv[1:] if a.startswith("--")]
        targets = [a for a in argv[1:] if not a.startswith("--")]
        if len(targets) != 1 or "/" not in targets[0]:
            fail("mb needs ALIAS/BUCKET")
        name, bucket = targets[0].split("/", 1)
        alias = aliases().get(name) or fail(f"no alias {name}")
        status = request(alias, "PUT", f"/{bucket}")
        if status == 409 and "--ignore-existing" in flags:
            print(f"Bucket `{targets[0]}` already exists.")
        elif status != 200:
            fail(f"Unable to make bucket `{targets[0]}`: HTTP {status}")
        else:
            print(f"Bucket created successfully `{targets[0]}`.")
    elif argv[:1] == ["ready"] and len(argv) == 2:
        alias = aliases().get(argv[1]) or fail(f"no alias {argv[1]}")
        if request(alias, "GET", "/minio/health/ready") != 200:
            fail("The cluster is not ready")
        print(f"The cluster '{argv[1]}' is ready")
    else:
        fail(f"unknown command {' '.join(argv)}")


if __name__ == "__main__":
    main(sys.argv[1:])
