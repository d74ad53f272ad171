"""Debian sid's Prometheus 3.5 (the Prometheus image's LTS line): `promtool` and `prometheus`,
unpacked into /opt/prometheus-3.5 (or RAG_INFRA_PROMETHEUS) by `.ci/sid-binary.sh` from `.ci/run`."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

PROMETHEUS_HOME = Path(os.environ.get("RAG_INFRA_PROMETHEUS", "/opt/prometheus-3.5"))
PROMTOOL = PROMETHEUS_HOME / "root" / "usr" / "bin" / "promtool"
PROMETHEUS = PROMETHEUS_HOME / "root" / "usr" / "bin" / "prometheus"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run promtool (`stdin`: what it reads, for `check metrics`)."""
    if not PROMTOOL.exists():
        raise RuntimeError(f"no promtool at {PROMTOOL}: .ci/run installs it with .ci/sid-binary.sh")
    return subprocess.run([str(PROMTOOL), *args], input=stdin, capture_output=True, text=True, timeout=120)


class MetricsServer:
    """`body` at `path` in the text format; with `token`, only for `Authorization: Bearer <token>`."""

    def __init__(self, body: str, token: str | None = None, path: str = "/metrics") -> None:
        expected = f"Bearer {token}" if token else None

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if expected and self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                data = body.encode()
                self.send_response(200 if self.path == path else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# PromQL words that are not metric names: operators, modifiers and aggregation clauses.
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping labels, strings,
    durations and functions left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word, rest = match[0], text[match.end() :].lstrip()
        if rest.startswith("(") or word in _KEYWORDS or re.fullmatch(r"\d.*|[eE]\d*|Inf|NaN", word):
            continue
        if match.start() > 0 and text[match.start() - 1].isdigit():
            continue  # a number's exponent or unit (1e3, 5m)
        names.add(word)
    return names


@contextmanager
def running_prometheus(config: Path, data: Path) -> Iterator[str]:
    """A real Prometheus on a free loopback port with `config`, until the block ends; its URL."""
    from tests.support.nginx import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def active_targets(url: str, done: Callable[[list[dict]], bool], timeout: float = 30.0) -> list[dict]:
    """The active targets once `done(targets)` holds, or as they were last seen at `timeout`.
    Before it is ready, Prometheus answers its API with a plain-text 503; before it listens (or
    behind a forwarder while it starts), the connection fails."""
    deadline = time.monotonic() + timeout
    active: list[dict] = []
    while time.monotonic() < deadline:
        try:
            answer = requests.get(f"{url}/api/v1/targets", timeout=5)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.status_code == 200:
            active = answer.json()["data"]["activeTargets"]
            if done(active):
                break
        time.sleep(0.5)
    return active
