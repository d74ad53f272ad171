"""A private Docker engine for the end-to-end tests: its own socket, data and exec roots.

`python -m e2e.engine start DIR` starts dockerd with everything under DIR and waits until it
answers; `python -m e2e.engine stop DIR` stops it by its pid file (and leaves the swarm it may
have joined, so the next start is clean). The tests (e2e/conftest.py) reuse a running engine
named by `RAG_E2E_DOCKER_DIR`, or start one of their own for the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker

DOCKERD = "dockerd"
START_TIMEOUT_S = 60
API_VERSION = "1.41"
"""Debian 12's docker.io (20.10); pinned so a client can be made before the engine answers."""


def client(url: str, timeout: int = 120) -> docker.DockerClient:
    """A Docker SDK client of the API version this harness speaks."""
    return docker.DockerClient(base_url=url, version=API_VERSION, timeout=timeout)


def socket_path(root: Path) -> Path:
    return root / "docker.sock"


def base_url(root: Path) -> str:
    return f"unix://{socket_path(root)}"


def start(root: Path) -> docker.DockerClient:
    """Start dockerd under `root` (or reuse the one already answering there)."""
    root.mkdir(parents=True, exist_ok=True)
    engine = client(base_url(root))
    if _answers(engine):
        return engine
    if shutil.which(DOCKERD) is None:
        raise RuntimeError("dockerd is not installed: `apt-get install -y docker.io` (e2e/run.sh does it)")
    log = (root / "dockerd.log").open("ab")
    subprocess.Popen(
        [
            DOCKERD,
            "--host",
            base_url(root),
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            # The tests publish ports on the host; no userland proxy needed beside iptables,
            # but the default keeps published 127.0.0.1 ports reachable from this host.
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if _answers(engine):
            return engine
        time.sleep(0.3)
    raise RuntimeError(
        f"dockerd did not answer on {socket_path(root)} in {START_TIMEOUT_S} s; see {root}/dockerd.log"
    )


def stop(root: Path) -> None:
    """Leave any swarm, then stop dockerd by its pid file and wait for it to exit."""
    pidfile = root / "dockerd.pid"
    if not pidfile.exists():
        return
    engine = client(base_url(root), timeout=30)
    if _answers(engine):
        with contextlib.suppress(docker.errors.APIError):  # not in a swarm
            engine.swarm.leave(force=True)
    pid = int(pidfile.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _answers(client: docker.DockerClient) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: python -m e2e.engine start|stop DIR")
    directory = Path(sys.argv[2]).resolve()
    if sys.argv[1] == "start":
        start(directory)
        print(base_url(directory))
    else:
        stop(directory)
