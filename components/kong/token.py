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

# A token lives at most a week: long enough for a batch job, short enough that a leaked one dies.
MAX_TTL_SECONDS = 7 * 24 * 3600
SHAPE = '{"consumers": [{"username": "...", "key": "...", "secret": "..."}]}'


def issue_token(
    credentials: dict[str, Any], consumer: str, ttl_seconds: int, now: float | None = None
) -> str:
    """Token for `consumer` from the `kongJwtCredentials` output."""
    consumers = credentials.get("consumers") if isinstance(credentials, dict) else None
    if not isinstance(consumers, list) or not all(isinstance(c, dict) for c in consumers):
        raise ValueError(f"the credentials are not the kongJwtCredentials output; expected {SHAPE}")
    for index, entry in enumerate(consumers):
        missing = [field for field in ("username", "key", "secret") if not isinstance(entry.get(field), str)]
        if missing:
            raise ValueError(f"consumers[{index}] has no {', '.join(missing)}; expected {SHAPE}")
    by_name = {c["username"]: c for c in consumers}
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
        try:
            text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        except FileNotFoundError:
            raise ValueError("the Pulumi CLI is not on PATH; pass --credentials FILE instead") from None
    try:
        value = json.loads(text)
        # `pulumi stack output --json` prints the output's JSON string as a JSON string.
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as err:
        where = source if source and source != "-" else "the kongJwtCredentials output"
        raise ValueError(f"{where} is not JSON ({err.msg} at line {err.lineno}); expected {SHAPE}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.kong.token", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--consumer", default="rag-client", help="Kong consumer username (default rag-client)"
    )
    parser.add_argument("--stack", help="Pulumi stack to read (default: the selected stack)")
    parser.add_argument(
        "--credentials",
        help=f"file with the kongJwtCredentials output, or - for stdin (JSON: {SHAPE}); "
        "default: read it with the Pulumi CLI",
    )
    parser.add_argument(
        "--ttl", type=int, default=3600, help=f"seconds until exp (default 3600, at most {MAX_TTL_SECONDS})"
    )
    args = parser.parse_args(argv)
    try:
        if not 0 < args.ttl <= MAX_TTL_SECONDS:
            raise ValueError(
                f"--ttl must be between 1 and {MAX_TTL_SECONDS} seconds (a week), got {args.ttl}"
            )
        token = issue_token(_read_credentials(args.credentials, args.stack), args.consumer, args.ttl)
    except (ValueError, OSError, subprocess.CalledProcessError) as err:
        detail = (getattr(err, "stderr", None) or str(err)).strip().splitlines() or ["failed"]
        print(f"kong.token: {detail[-1]}", file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
