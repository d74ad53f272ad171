"""Our standard-library modules run inside official images: each is mounted as a Swarm config at
its package path under PROGRAM_ROOT, and `python3 -m components.<tier>.<module>` runs it there
with the same imports as in this repository (the folders are namespace packages)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from components.platform.service import ServiceFile

PROGRAM_ROOT = "/opt/rag-infra"
PROGRAM_ENV = {"PYTHONPATH": PROGRAM_ROOT, "PYTHONUNBUFFERED": "1"}
"""What the service's environment needs for `python3 -m` to find them and to log at once."""


def module_path(module: ModuleType) -> str:
    """Where `module` is mounted in the container."""
    return f"{PROGRAM_ROOT}/{module.__name__.replace('.', '/')}.py"


def program_files(*modules: ModuleType) -> list[ServiceFile]:
    """Each module's source as a config file at its path under PROGRAM_ROOT."""
    return [ServiceFile(module_path(m), Path(m.__file__ or "").read_text()) for m in modules]
