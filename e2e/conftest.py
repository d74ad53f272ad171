"""Fixtures of the end-to-end tests: a private Docker engine with the stand-in images, and
stacks deployed on it by the program itself (e2e/apply.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e import engine as dockerd
from e2e.images import build_stand_ins
from e2e.stack import Engine


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The engine e2e/run.sh started (RAG_E2E_DOCKER_DIR), or one of the session's own.

    Its folder is short and under /tmp: a unix socket path has at most 107 bytes."""
    given = os.environ.get("RAG_E2E_DOCKER_DIR")
    root = Path(given) if given else Path(tempfile.mkdtemp(prefix="rag-e2e-", dir="/tmp"))
    client = dockerd.start(root)
    try:
        yield Engine(root=root, client=client, built=build_stand_ins(client))
    finally:
        if not given:
            dockerd.stop(root)
