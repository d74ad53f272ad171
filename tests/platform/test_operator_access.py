"""OperatorAccess: its nginx stream config, checked and run by real nginx of the image's release
line, and where the program puts it (the manager's loopback, the admin ports no service may
publish)."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
import requests

from components.platform.operator_access import Forward, render_operator_access_conf
from tests.support.nginx import NGINX_HOME, free_port

STREAM_MODULE = NGINX_HOME / "root" / "usr" / "lib" / "nginx" / "modules" / "ngx_stream_module.so"


def as_debian_runs_it(conf: str, tmp: Path) -> str:
    """The official image builds the stream module in; Debian's nginx loads it (libnginx-mod-stream)."""
    assert STREAM_MODULE.exists(), f"no {STREAM_MODULE}: .ci/run installs libnginx-mod-stream with nginx"
    return f"load_module {STREAM_MODULE};\n" + conf.replace("/var/run/nginx.pid", str(tmp / "nginx.pid"))


def test_each_forward_is_a_stream_server_resolving_its_target_per_connection():
    conf = render_operator_access_conf(
        [Forward(8100, "kong", 8100, "Kong status"), Forward(8001, "kong", 8001, "Kong admin API")]
    )
    assert "resolver 127.0.0.11 valid=10s ipv6=off;" in conf
    assert conf.index("listen 8001;") < conf.index("listen 8100;")
    assert "set $target kong:8001;\n        proxy_pass $target;" in conf


@pytest.mark.parametrize(
    ("forwards", "message"),
    [
        ([], "at least one port"),
        ([Forward(1, "a", 1, "a"), Forward(1, "b", 2, "b")], r"forwarded twice: \[1\]"),
    ],
)
def test_no_forward_or_a_port_twice_is_refused(forwards, message):
    with pytest.raises(ValueError, match=message):
        render_operator_access_conf(forwards)


def test_nginx_of_the_images_release_accepts_the_config(nginx, tmp_path):
    conf = render_operator_access_conf([Forward(8001, "kong", 8001, "Kong admin API")])
    result = nginx(as_debian_runs_it(conf, tmp_path)).check()
    assert result.returncode == 0, result.stderr


def test_a_connection_to_the_loopback_port_reaches_the_target(nginx, tmp_path):
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"admin api")

        def log_message(self, *args) -> None:
            pass

    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    port = free_port()
    conf = render_operator_access_conf([Forward(port, "127.0.0.1", target.server_port, "a stand-in")])
    conf = conf.replace(f"listen {port};", f"listen 127.0.0.1:{port};")
    server = nginx(as_debian_runs_it(conf, tmp_path))
    server.start(port)
    try:
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).text == "admin api"
    finally:
        server.stop()
        target.shutdown()
