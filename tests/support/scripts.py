"""Run one of our standard-library modules as a backup service runs it: the files the service
mounts, laid out under a scratch PROGRAM_ROOT, `python3 -m` with the service's environment, and
nothing of this repository on the path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from components.platform.scripts import PROGRAM_ROOT, program_files


def run_program(
    root: Path, modules: Sequence[ModuleType], module: str, args: Sequence[str], env: dict[str, str]
) -> subprocess.CompletedProcess:
    """`python3 -m module args…` over copies of `modules` under `root` (its PYTHONPATH)."""
    for file in program_files(*modules):
        target = root / "program" / Path(file.path).relative_to(PROGRAM_ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(file.content))
    workdir = root / "workdir"
    workdir.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**env, "PYTHONPATH": str(root / "program")},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
