"""The rendered load balancer on a real nginx: `nginx -t`, proxying and failover."""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import replace

import pytest
import requests

from components.platform.settings import image_version
from components.qdrant.lb_config import LbOptions, LbTls, Upstream, render_qdrant_lb_conf
from tests.harness import run_program, unwrap_secrets
from tests.support.backends import Backend
from tests.support.certificates import self_signed
from tests.support.nginx import free_port, nginx_version
from tests.support.prometheus import promtool

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
        metrics_port=free_port(),
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


def test_with_tls_the_lb_serves_its_published_ports_over_tls_and_keeps_plaintext_inside(
    nginx, tmp_path, backends
):
    """The TLS listeners answer with the stack's certificate (checked against it, refused by a
    client that does not trust it, and refused to plaintext); the plaintext one stays."""
    pair = self_signed(tmp_path / "tls")
    rest, grpc, tls_rest, tls_grpc = free_port(), free_port(), free_port(), free_port()
    options = replace(
        local_options(tmp_path, rest, grpc),
        tls=LbTls(str(pair.certificate_path), str(pair.key_path), rest_port=tls_rest, grpc_port=tls_grpc),
    )
    upstreams = [Upstream("127.0.0.1", b.port, free_port()) for b in backends]
    server = nginx(render_qdrant_lb_conf(upstreams, options))
    assert server.check().returncode == 0
    server.start(tls_rest)
    trusted = str(pair.certificate_path)
    answer = requests.get(f"https://127.0.0.1:{tls_rest}/collections/x", verify=trusted, timeout=5)
    assert answer.status_code == 200 and answer.json()["result"]["node"].startswith("node-")
    assert requests.get(f"https://localhost:{tls_rest}/lb-healthz", verify=trusted, timeout=5).ok
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{tls_rest}/lb-healthz", timeout=5)  # the system's CAs only
    assert requests.get(f"http://127.0.0.1:{tls_rest}/lb-healthz", timeout=5).status_code == 400
    assert requests.get(f"http://127.0.0.1:{rest}/lb-healthz", timeout=5).status_code == 200
    # The gRPC port too speaks TLS (a TLS handshake with HTTP/2 offered succeeds).
    context = ssl.create_default_context(cafile=str(pair.certificate_path))
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", tls_grpc), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.selected_alpn_protocol() == "h2"


def test_each_lb_task_serves_its_connection_gauges_to_prometheus(nginx, tmp_path, backends):
    """The metrics listener answers in Prometheus's text format (promtool reads it) with this
    nginx's own numbers: the scrape's connection is among the active ones."""
    options = local_options(tmp_path, free_port(), free_port())
    upstreams = [Upstream("127.0.0.1", b.port, free_port()) for b in backends]
    server = nginx(render_qdrant_lb_conf(upstreams, options))
    server.start(options.metrics_port)
    answer = requests.get(f"http://127.0.0.1:{options.metrics_port}/metrics", timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    checked = promtool("check", "metrics", stdin=answer.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    values = dict(line.split() for line in answer.text.splitlines() if not line.startswith("#"))
    assert set(values) == {f"nginx_connections_{k}" for k in ("active", "reading", "writing", "waiting")}
    assert int(values["nginx_connections_active"]) >= 1 and int(values["nginx_connections_writing"]) >= 1
    # The metrics port is not a Qdrant port: nothing else is answered there.
    assert requests.get(f"http://127.0.0.1:{options.metrics_port}/collections", timeout=5).status_code == 404


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


SHIPPED_NGINX_CONFIGS = [
    ("qdrant-lb", "qdrant-lb-image"),
    ("neon-notify", "neon-storage-image-nginx"),
]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize(("container", "image"), SHIPPED_NGINX_CONFIGS)
def test_every_shipped_nginx_config_passes_nginx_t_of_the_images_release(
    nginx, tmp_path, stack, container, image
):
    """The file exactly as the container gets it, checked by nginx of the image's release line;
    the TLS pair it names (mounted there in the container) is a real one of this machine."""
    run = run_program(stack)
    uploads = unwrap_secrets(run.workload(f"rag-infra-{stack}-{container}").inputs["uploads"])
    conf = next(u["content"] for u in uploads if u["file"] == "/etc/nginx/nginx.conf")
    pair = self_signed(tmp_path / "tls")
    conf = re.sub(r"ssl_certificate (\S+);", f"ssl_certificate {pair.certificate_path};", conf)
    conf = re.sub(r"ssl_certificate_key (\S+);", f"ssl_certificate_key {pair.key_path};", conf)
    assert image_version(run.named(image).inputs["name"])[:2] == nginx_version()[:2]
    result = nginx(conf).check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def start_lb(nginx, tmp_path, nodes: list[Backend]) -> str:
    rest_port = free_port()
    upstreams = [Upstream("127.0.0.1", b.port, free_port()) for b in nodes]
    nginx(render_qdrant_lb_conf(upstreams, local_options(tmp_path, rest_port, free_port()))).start(rest_port)
    return f"http://127.0.0.1:{rest_port}"


SEARCH = ("POST", "/collections/c/points/search")
RETRIED_CALLS = [
    ("GET", "/collections/c"),
    SEARCH,
    ("POST", "/collections/c/points/query"),
    ("POST", "/collections/c/points/scroll"),
    ("PUT", "/collections/c/points?wait=true"),
    ("POST", "/collections/c/points/delete"),
    ("POST", "/collections/c/points/payload"),
]


@pytest.fixture
def nodes():
    started: list[Backend] = []

    def make(*modes: str) -> list[Backend]:
        started.extend(Backend(f"node-{i}", mode) for i, mode in enumerate(modes))
        return started

    yield make
    for backend in started:
        backend.kill()


@pytest.mark.parametrize("trouble", ["503", "drop"])
def test_idempotent_calls_succeed_past_a_node_in_trouble(nginx, tmp_path, nodes, trouble):
    """A node that answers 503, or dies mid-request, costs the client nothing on calls that
    may be repeated: nginx passes them to the next node."""
    healthy, troubled, other = nodes("ok", trouble, "ok")
    url = start_lb(nginx, tmp_path, [healthy, troubled, other])
    session = requests.Session()
    answered = []
    for i in range(60):
        method, path = RETRIED_CALLS[i % len(RETRIED_CALLS)]
        response = session.request(method, url + path, json={"vector": [0.1] * 4, "limit": 3}, timeout=10)
        assert response.status_code == 200, (method, path, response.status_code)
        answered.append(response.json()["result"]["node"])
    assert set(answered) == {"node-0", "node-2"}
    assert troubled.stats()["requests"], "the troubled node was never tried: the test proves nothing"


def test_other_posts_reach_one_node_at_most_once(nginx, tmp_path, nodes):
    """Snapshots, aliases and cluster operations are not retried: a node that died while
    handling one gives the client a 502, and no second node repeats it."""
    dying, healthy = nodes("drop", "ok")
    url = start_lb(nginx, tmp_path, [dying, healthy])
    calls = ["/collections/c/snapshots", "/collections/aliases", "/collections/c/cluster", "/cluster/recover"]
    statuses = [requests.post(url + path, json={}, timeout=10).status_code for path in calls]
    received = dying.stats()["requests"] + healthy.stats()["requests"]
    assert sorted(received) == sorted(f"POST {path}" for path in calls)  # each exactly once
    assert 502 in statuses and set(statuses) <= {200, 502}
    assert statuses.count(502) == len(dying.stats()["requests"])


def test_keepalive_connections_to_the_nodes_are_reused(nginx, tmp_path, nodes):
    backends = nodes("ok", "ok", "ok")
    url = start_lb(nginx, tmp_path, backends)
    session = requests.Session()
    for i in range(300):
        method, path = RETRIED_CALLS[i % len(RETRIED_CALLS)]
        assert session.request(method, url + path, json={}, timeout=10).status_code == 200
    # Each node's count includes the one connection of this /_stats request.
    opened = [b.stats()["connections"] - 1 for b in backends]
    assert sum(len(b.stats()["requests"]) for b in backends) == 300
    assert all(1 <= count <= 2 for count in opened), opened
