"""A load run with Locust in library mode, in a process of its own (Locust monkey-patches the
standard library with gevent when imported, which must not happen inside the checks' process).

    python -m verify.load --url URL --path PATH [--method POST] [--header K:V] [--body JSON]
                          [--seconds 30] [--rate 600] [--users 50]

prints one JSON line: requests, failures, error_rate, qps, p50_ms, p95_ms, p99_ms. `--rate` is the
target request rate (each simulated user paces itself, `constant_throughput`); the result is
what the system under test answered, so it is compared with the generator's own ceiling on the
same machine (`generator_ceiling`) before it is judged.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from verify.report import Check
from verify.settings import LoadSettings


@dataclass(frozen=True)
class LoadResult:
    requests: int
    failures: int
    error_rate: float
    qps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def run_load(
    url: str,
    path: str,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    body: object = None,
    seconds: float = 30.0,
    rate: float = 600.0,
    users: int = 50,
) -> LoadResult:
    """One load run against `url` + `path`, in a subprocess."""
    command = [sys.executable, "-m", "verify.load", "--url", url, "--path", path, "--method", method,
               "--seconds", str(seconds), "--rate", str(rate), "--users", str(users)]  # fmt: skip
    for key, value in (headers or {}).items():
        command += ["--header", f"{key}:{value}"]
    if body is not None:
        command += ["--body", json.dumps(body)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    if result.returncode != 0:
        raise RuntimeError(f"the load generator failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return LoadResult(**json.loads(result.stdout.strip().splitlines()[-1]))


def generator_ceiling(seconds: float = 3.0, users: int = 50) -> LoadResult:
    """What the generator reaches against a static endpoint on this machine (its own process,
    asyncio, keepalive): no result of a real run near it says anything about the system."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "verify.load", "--serve-static", str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        return run_load(
            f"http://127.0.0.1:{port}", "/", body={}, seconds=seconds, rate=1_000_000, users=users
        )
    finally:
        server.kill()
        server.wait()


def judge(name: str, result: LoadResult, settings: LoadSettings, ceiling: LoadResult) -> Check:
    """A load result against the plan's marks; inconclusive when the generator was the limit."""
    error_limit = settings.max_error_rate
    saw = (
        f"{result.qps:g} qps, p50/p95/p99 {result.p50_ms:g}/{result.p95_ms:g}/{result.p99_ms:g} ms, "
        f"errors {100 * result.error_rate:.3g}% of {result.requests} (marks: p95 <= {settings.p95_ms} ms, "
        f">= {settings.min_qps} qps, errors <= {100 * error_limit:g}%; generator ceiling {ceiling.qps:g} qps)"
    )
    if ceiling.qps < 1.5 * settings.min_qps:
        return Check(
            name, False, f"inconclusive: the generator itself reaches only {ceiling.qps:g} qps; {saw}"
        )
    ok = (
        result.p95_ms <= settings.p95_ms
        and result.qps >= settings.min_qps
        and result.error_rate <= error_limit
    )
    return Check(name, ok, saw)


def _serve_static(port: int) -> None:
    """The ceiling's endpoint: `200 {}` to every request, HTTP/1.1 keepalive."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                if length:
                    await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def _main(argv: list[str]) -> int:
    import argparse

    if argv[:1] == ["--serve-static"]:
        _serve_static(int(argv[1]))
        return 0

    import gevent
    from locust import FastHttpUser, constant_throughput, task
    from locust.env import Environment

    parser = argparse.ArgumentParser(prog="python -m verify.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--body")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=600.0)
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    body = json.loads(args.body) if args.body else None

    class Client(FastHttpUser):
        host = args.url
        wait_time = constant_throughput(args.rate / args.users)

        @task
        def call(self) -> None:
            self.client.request(args.method, args.path, headers=headers, json=body)

    env = Environment(user_classes=[Client])
    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.users)
    gevent.spawn_later(args.seconds, runner.quit)
    runner.greenlet.join()
    total = env.stats.total
    print(
        json.dumps(
            {
                "requests": total.num_requests,
                "failures": total.num_failures,
                "error_rate": round(total.fail_ratio, 6),
                "qps": round(total.num_requests / args.seconds, 1),
                "p50_ms": total.get_response_time_percentile(0.50) or 0.0,
                "p95_ms": total.get_response_time_percentile(0.95) or 0.0,
                "p99_ms": total.get_response_time_percentile(0.99) or 0.0,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
