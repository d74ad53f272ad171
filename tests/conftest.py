"""Shared fixtures: the program under mocks, a real PostgreSQL, a real nginx."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import run_program
from tests.support.nginx import Nginx
from tests.support.postgres import PostgresServer


@pytest.fixture
def program():
    """Run the whole program for a stack file under mocks: `program("dev", overrides=...)`."""
    return run_program


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
