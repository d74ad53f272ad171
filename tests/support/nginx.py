"""A real nginx of the LB image's release line (1.30, from Debian sid) run from a config file on
free local ports. `.ci/run` installs it with `.ci/sid-binary.sh` (into /opt/nginx-1.30, or
RAG_INFRA_NGINX)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

NGINX_HOME = Path(os.environ.get("RAG_INFRA_NGINX", "/opt/nginx-1.30"))


def nginx_binary() -> str:
    """The nginx that runs the shipped configs: the release line of the pinned nginx image."""
    binary = NGINX_HOME / "root" / "usr" / "sbin" / "nginx"
    if not binary.exists():
        raise RuntimeError(
            f"no nginx 1.30 at {binary}: see .ci/run, which installs it with .ci/sid-binary.sh"
        )
    return str(binary)


def nginx_version() -> tuple[int, ...]:
    out = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=True).stderr
    return tuple(int(p) for p in out.strip().split("/")[-1].split(" ")[0].split("."))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Nginx:
    """One nginx master process for a rendered config; `check()` is `nginx -t`."""

    def __init__(self, workdir: Path, conf_text: str) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(conf_text)
        self.process: subprocess.Popen | None = None

    def _cmd(self, *extra: str) -> list[str]:
        # An absolute -c and -p: nginx resolves a relative -c against its prefix, not the cwd.
        return [nginx_binary(), "-p", f"{self.workdir}/", "-c", str(self.conf), "-e", "stderr", *extra]

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self._cmd("-t"), capture_output=True, text=True, timeout=30)

    def start(self, port: int) -> None:
        self.process = subprocess.Popen(
            self._cmd("-g", "daemon off;"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> str:
        if self.process is None:
            return ""
        self.process.terminate()
        try:
            out, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.process = None
        return out.decode(errors="replace") if out else ""
