"""The rendered load balancer on a real nginx: `nginx -t`, proxying and failover."""

from __future__ import annotations

import time

import pytest
import requests

from components.qdrant.lb_config import LbOptions, Upstream, render_qdrant_lb_conf
from tests.support.backends import Backend
from tests.support.nginx import free_port, nginx_version

MAX_FAILS = 2


def local_options(tmp_path, rest_port: int, grpc_port: int) -> LbOptions:
    # The container's defaults, except what a test machine needs: its own nginx version,
    # loopback ports, writable pid/log/temp paths, one worker (so passive-health counts are exact)
    # and no Docker DNS.
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return LbOptions(
        nginx_version=nginx_version(),
        rest_port=rest_port,
        grpc_port=grpc_port,
        listen_host="127.0.0.1",
        max_fails=MAX_FAILS,
        docker_dns=False,
        worker_processes="1",
        pid_path=str(tmp_path / "nginx.pid"),
        error_log=f"{tmp_path / 'error.log'} warn",
        temp_dir=str(tmp_path / "tmp"),
    )


@pytest.fixture
def backends():
    started = [Backend(f"node-{i}") for i in range(3)]
    yield started
    for backend in started:
        backend.kill()


def test_rendered_config_passes_nginx_t(nginx, tmp_path):
    upstreams = [Upstream("127.0.0.1", free_port(), free_port()) for _ in range(3)]
    conf = render_qdrant_lb_conf(upstreams, local_options(tmp_path, free_port(), free_port()))
    result = nginx(conf).check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_rendered_config_with_a_typo_fails_nginx_t(nginx, tmp_path):
    # Guards the test above: nginx -t really parses what we render.
    upstreams = [Upstream("127.0.0.1", free_port(), free_port())]
    conf = render_qdrant_lb_conf(upstreams, local_options(tmp_path, free_port(), free_port()))
    result = nginx(conf.replace("keepalive ", "keepalivee ", 1)).check()
    assert result.returncode != 0
    assert "unknown directive" in result.stderr


def test_requests_keep_succeeding_when_a_node_dies(nginx, tmp_path, backends):
    rest_port = free_port()
    upstreams = [Upstream("127.0.0.1", b.port, free_port()) for b in backends]
    server = nginx(render_qdrant_lb_conf(upstreams, local_options(tmp_path, rest_port, free_port())))
    server.start(rest_port)

    session = requests.Session()
    url = f"http://127.0.0.1:{rest_port}"
    answered_by: list[str] = []
    failures: list[str] = []
    total, kill_at = 900, 300
    for i in range(total):
        if i == kill_at:
            backends[1].kill()
            killed_at = time.monotonic()
        # A steady mix of Qdrant's idempotent calls: reads (GET), searches (POST), upserts (PUT).
        method, path = [
            ("GET", "/collections/docs_index_mxbai"),
            ("POST", "/collections/docs_index_mxbai/points/search"),
            ("PUT", "/collections/docs_index_mxbai/points?wait=true"),
        ][i % 3]
        try:
            response = session.request(method, url + path, json={"vector": [0.1] * 8, "limit": 3}, timeout=5)
        except requests.RequestException as err:
            failures.append(f"{i}: {err}")
            continue
        if response.status_code != 200:
            failures.append(f"{i}: {method} {path} -> {response.status_code}")
            continue
        answered_by.append(response.json()["result"]["node"])

    assert failures == [], f"{len(failures)} of {total} failed: {failures[:5]}"
    before, after = answered_by[:kill_at], answered_by[kill_at:]
    assert set(before) == {"node-0", "node-1", "node-2"}
    assert set(after) == {"node-0", "node-2"}
    # Passive health: after max_fails connection errors nginx stops trying the dead node for
    # fail_timeout (10 s), then probes it with one request per window.
    windows = int((time.monotonic() - killed_at) // 10)
    time.sleep(0.2)
    errors = (tmp_path / "error.log").read_text()
    dead = f"127.0.0.1:{backends[1].port}"
    attempts = sum(1 for line in errors.splitlines() if "connect() failed" in line and dead in line)
    assert 1 <= attempts <= MAX_FAILS + windows, errors[-2000:]
