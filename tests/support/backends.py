"""Start and kill stand-in node processes."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT
from tests.support.nginx import free_port, wait_for_port


class Backend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.backend", str(self.port), name],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
