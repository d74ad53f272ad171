"""Debian sid's Prometheus 3.5 (the Prometheus image's LTS line): `promtool` and `prometheus`,
unpacked into /opt/prometheus-3.5 (or RAG_INFRA_PROMETHEUS) by `.ci/sid-binary.sh` from `.ci/run`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROMETHEUS_HOME = Path(os.environ.get("RAG_INFRA_PROMETHEUS", "/opt/prometheus-3.5"))
PROMTOOL = PROMETHEUS_HOME / "root" / "usr" / "bin" / "promtool"
PROMETHEUS = PROMETHEUS_HOME / "root" / "usr" / "bin" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    if not PROMTOOL.exists():
        raise RuntimeError(f"no promtool at {PROMTOOL}: .ci/run installs it with .ci/sid-binary.sh")
    return subprocess.run([str(PROMTOOL), *args], capture_output=True, text=True, timeout=120)
