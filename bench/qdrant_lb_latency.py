"""Latency the Qdrant NGINX load balancer adds: the same requests through it and straight to a node.

    venv/bin/python -m bench.qdrant_lb_latency [--requests 3000]

Baseline: direct keepalive requests to one stand-in node. Prints p50/p95 of both and the added
latency; the target is < 0.5 ms at p95. Not part of the test run's pass/fail.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import time
from pathlib import Path

from components.qdrant.lb_config import LbOptions, Upstream, render_qdrant_lb_conf
from tests.support.backends import Backend
from tests.support.nginx import Nginx, free_port, nginx_version

BODY = b'{"vector": [0.1, 0.2, 0.3, 0.4], "limit": 10}'


def measure(port: int, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    for i in range(count + 200):
        start = time.perf_counter()
        connection.request(
            "POST",
            "/collections/bench/points/search",
            body=BODY,
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"request {i} answered {response.status}")
        if i >= 200:  # warm-up
            samples.append(elapsed * 1000)
    connection.close()
    return samples


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    backends = [Backend(f"node-{i}") for i in range(3)]
    workdir = Path(tempfile.mkdtemp(prefix="lb-bench-"))
    (workdir / "tmp").mkdir()
    lb_port = free_port()
    options = LbOptions(
        nginx_version=nginx_version(),
        rest_port=lb_port,
        grpc_port=free_port(),
        listen_host="127.0.0.1",
        docker_dns=False,
        worker_processes="1",
        pid_path=str(workdir / "nginx.pid"),
        error_log=f"{workdir / 'error.log'} warn",
        temp_dir=str(workdir / "tmp"),
    )
    nginx = Nginx(
        workdir,
        render_qdrant_lb_conf([Upstream("127.0.0.1", b.port, free_port()) for b in backends], options),
    )
    nginx.start(lb_port)
    try:
        direct = measure(backends[0].port, args.requests)
        through = measure(lb_port, args.requests)
    finally:
        nginx.stop()
        for backend in backends:
            backend.kill()
    d50, d95 = percentile(direct, 50), percentile(direct, 95)
    l50, l95 = percentile(through, 50), percentile(through, 95)
    print(f"requests: {args.requests} POST search, keepalive, one client")
    print(f"direct to one node (baseline): p50 {d50:.3f} ms  p95 {d95:.3f} ms")
    print(f"through the NGINX LB:          p50 {l50:.3f} ms  p95 {l95:.3f} ms")
    print(
        f"added by the LB:               p50 {l50 - d50:+.3f} ms  p95 {l95 - d95:+.3f} ms "
        f"(ratio p95 {l95 / d95:.2f}x; target: < 0.5 ms added at p95)"
    )


if __name__ == "__main__":
    main()
