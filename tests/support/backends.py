"""Start and kill stand-in node processes."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.harness import ROOT
from tests.support.nginx import free_port, wait_for_port


class Backend:
    """One stand-in node process (see tests/support/backend.py for the modes)."""

    def __init__(self, name: str, mode: str = "ok") -> None:
        self.name = name
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.backend", str(self.port), name, mode],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stats(self) -> dict:
        """Connections accepted and requests received, asked of the node directly."""
        return requests.get(f"http://127.0.0.1:{self.port}/_stats", timeout=5).json()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
