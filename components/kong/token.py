"""Issue a signed JWT for a Kong consumer from the stack's outputs.

    python -m components.kong.token --consumer rag-client [--stack dev] [--ttl 3600]

reads `pulumi stack output kongJwtCredentials --show-secrets --json` (or `--credentials FILE`,
`-` for stdin) and prints an HS256 token whose `iss` is the consumer's key and whose `exp`
Kong checks. Use it as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import jwt


def issue_token(
    credentials: dict[str, Any], consumer: str, ttl_seconds: int, now: float | None = None
) -> str:
    """Token for `consumer` from the `kongJwtCredentials` output."""
    by_name = {c["username"]: c for c in credentials.get("consumers", [])}
    if consumer not in by_name:
        known = ", ".join(sorted(by_name)) or "none"
        raise ValueError(f"no Kong consumer {consumer!r} in the stack outputs (consumers: {known})")
    issued = int(now if now is not None else time.time())
    entry = by_name[consumer]
    claims = {"iss": entry["key"], "sub": consumer, "iat": issued, "exp": issued + ttl_seconds}
    # HS256: the algorithm of the consumers' jwt_secrets in the rendered Kong config.
    return jwt.encode(claims, entry["secret"], algorithm="HS256")


def _read_credentials(source: str | None, stack: str | None) -> dict[str, Any]:
    if source == "-":
        text = sys.stdin.read()
    elif source:
        with open(source, encoding="utf-8") as handle:
            text = handle.read()
    else:
        command = ["pulumi", "stack", "output", "kongJwtCredentials", "--show-secrets", "--json"]
        if stack:
            command += ["--stack", stack]
        text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    value = json.loads(text)
    # `pulumi stack output --json` prints the output's JSON string as a JSON string.
    return json.loads(value) if isinstance(value, str) else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.kong.token", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--consumer", default="rag-client", help="Kong consumer username (default rag-client)"
    )
    parser.add_argument("--stack", help="Pulumi stack to read (default: the selected stack)")
    parser.add_argument("--credentials", help="file with the kongJwtCredentials output, or - for stdin")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until exp (default 3600)")
    args = parser.parse_args(argv)
    try:
        if args.ttl <= 0:
            raise ValueError("--ttl must be a positive number of seconds")
        token = issue_token(_read_credentials(args.credentials, args.stack), args.consumer, args.ttl)
    except (ValueError, OSError, subprocess.CalledProcessError) as err:
        detail = getattr(err, "stderr", None) or str(err)
        print(f"kong_token: {detail.strip()}", file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
