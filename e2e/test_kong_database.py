"""Kong with its database (`kong.database: postgres`), the mode neither stack file uses: the
plan's kong-db (real PostgreSQL), the one-shot migrations and import, then Kong serving the
imported routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from e2e.checks import data_volumes_hold_data, names_resolve_to_their_containers
from e2e.stack import Deployment, Engine, deploy


@pytest.fixture(scope="module")
def kong_db(engine: Engine) -> Iterator[Deployment]:
    deployment = deploy(
        engine,
        "dev",
        {
            "dockerHosts": engine.host_urls(1),
            "verify": {"enabled": False},
            "features": {"neon": False, "qdrantCluster": False, "kongGateway": True, "monitoring": False},
            "kong": {"database": "postgres", "cors": {"origins": ["https://app.example.com"]}},
        },
    )
    yield deployment
    deployment.destroy()


def test_the_database_then_the_migrations_then_kong(kong_db: Deployment) -> None:
    status = kong_db.wait_healthy()
    assert status == {
        "rag-infra-dev-kong-db": "healthy",
        "rag-infra-dev-kong": "healthy",
        "rag-infra-dev-operator-access": "healthy",
    }
    # The one-shot job ran on the host as `docker run` and exited 0 (else the deploy had failed).
    assert kong_db.mocks.exit_codes == {} and any(
        e.name == "kong-migrations-run" for e in kong_db.state.events
    )
    names_resolve_to_their_containers(kong_db, prober="rag-infra-dev-kong")
    data_volumes_hold_data(kong_db, written_on_demand=frozenset())


def test_kong_serves_the_routes_it_imported_from_its_database(kong_db: Deployment) -> None:
    proxy = kong_db.run.outputs["kongProxyUrl"]
    assert requests.get(f"{proxy}/rag-search", timeout=10).status_code == 401  # jwt, no token
    assert requests.get(f"{proxy}/nowhere", timeout=10).status_code == 404
    assert kong_db.destroy() == []
