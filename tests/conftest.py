"""Shared fixtures: the program under mocks, a real PostgreSQL, a real nginx."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ProgramRun, run_program
from tests.support.nginx import Nginx
from tests.support.postgres import PostgresServer

_RUNS: dict[str, ProgramRun] = {}


def _remembered_run(
    stack: str,
    overrides: dict[str, Any] | None = None,
    secret_overrides: dict[str, str] | None = None,
    **options,
) -> ProgramRun:
    """`run_program`, run once per stack and configuration in the session: the program is
    deterministic under the mocks (it reads only its config and the repository's files). Each
    caller gets its own copy to read or change."""
    if options:  # own mocks, a preview: not a plain run
        return run_program(stack, overrides, secret_overrides, **options)
    key = json.dumps([stack, overrides, secret_overrides], sort_keys=True)
    if key not in _RUNS:
        _RUNS[key] = run_program(stack, overrides, secret_overrides)
    return copy.deepcopy(_RUNS[key])


@pytest.fixture
def program():
    """Run the whole program for a stack file under mocks: `program("dev", overrides=...)`."""
    return _remembered_run


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory) -> Iterator[PostgresServer]:
    """One real PostgreSQL 18 (pgvector, pg_trgm) for the session."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_target_server(tmp_path_factory) -> Iterator[PostgresServer]:
    """A second real server: the migration's target is never the source's server."""
    server = PostgresServer(tmp_path_factory.mktemp("postgres-target")).start()
    yield server
    server.stop()


_database_ids = itertools.count()


@pytest.fixture
def postgres_db(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session server; returns its DSN."""
    return postgres_server.create_database(f"test_{next(_database_ids)}")


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str], Nginx]]:
    """Factory: `nginx(conf_text)` writes the file; `.check()` runs `nginx -t`, `.start(port)` serves."""
    started: list[Nginx] = []

    def make(conf_text: str) -> Nginx:
        instance = Nginx(tmp_path / f"nginx-{len(started)}", conf_text)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()
