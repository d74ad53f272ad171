"""The Neon storage checks through the strict controller fake (its tenant, timeline list and
tenant config answer as storage_controller does), and the branch computes on real PostgreSQL:
each passes against a healthy stand-in and fails, naming the problem, against a broken one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fake_http import FakeJsonServer
from tests.support.fake_neon import FakeStorageController
from tests.support.nginx import free_port
from verify.neon import check_branches, check_neon_storage

TENANT = "a" * 32
MAIN, EXPERIMENT = "b" * 32, "c" * 32


class Safekeeper(FakeJsonServer):
    def handle(self, method, path, body, headers):
        return (200, {"id": 1}) if path == "/v1/status" else (404, {"msg": "no route"})


@pytest.fixture
def storage() -> Iterator[dict]:
    with FakeStorageController() as controller, Safekeeper() as keeper:
        controller.handle("POST", "/v1/tenant", {"new_tenant_id": TENANT, "pitr_interval": "30 days"}, {})
        for timeline in (MAIN, EXPERIMENT):
            body = {"new_timeline_id": timeline, "pg_version": 17}
            controller.handle("POST", f"/v1/tenant/{TENANT}/timeline", body, {})
        yield {
            "status_urls": {
                "storageController": f"{controller.url}/status",
                "safekeeper0": f"{keeper.url}/v1/status",
            },
            "timelines": {"main": MAIN, "experiment": EXPERIMENT},
        }


def by_name(checks) -> dict:
    return {check.name: check for check in checks}


def test_a_healthy_storage_tier_passes(storage):
    checks = by_name(check_neon_storage(storage["status_urls"], TENANT, storage["timelines"], "30d"))
    assert all(c.ok for c in checks.values()), [str(c) for c in checks.values()]
    assert set(checks) == {"neon.tenant", "neon.timelines", "neon.pitr-retention", "neon.safekeeper0"}


def test_a_branch_the_controller_does_not_list_is_named(storage):
    timelines = {**storage["timelines"], "hotfix": "d" * 32}
    check = by_name(check_neon_storage(storage["status_urls"], TENANT, timelines, "30 days"))[
        "neon.timelines"
    ]
    assert not check.ok and "missing: hotfix" in check.saw


def test_a_pitr_retention_other_than_the_config_fails(storage):
    check = by_name(check_neon_storage(storage["status_urls"], TENANT, storage["timelines"], "7 days"))
    assert not check["neon.pitr-retention"].ok and "'30 days'" in check["neon.pitr-retention"].saw


def test_an_unknown_tenant_fails_every_tenant_check(storage):
    checks = by_name(check_neon_storage(storage["status_urls"], "e" * 32, storage["timelines"], "30 days"))
    assert not checks["neon.tenant"].ok and "404" in checks["neon.tenant"].saw
    assert not checks["neon.timelines"].ok and not checks["neon.pitr-retention"].ok


def test_a_safekeeper_down_is_named(storage):
    urls = {**storage["status_urls"], "safekeeper1": f"http://127.0.0.1:{free_port()}/v1/status"}
    checks = by_name(check_neon_storage(urls, TENANT, storage["timelines"], "30 days"))
    assert checks["neon.safekeeper0"].ok and not checks["neon.safekeeper1"].ok


def test_an_unreachable_controller_is_one_check_that_says_how_to_reach_it():
    urls = {"storageController": f"http://127.0.0.1:{free_port()}/status"}
    (check,) = check_neon_storage(urls, TENANT, {"main": MAIN}, "30 days")
    assert check.name == "neon.controller" and not check.ok and "tunnels" in check.saw


def test_each_branch_answers_on_its_own_compute(postgres_db):
    closed = postgres_db.rsplit(":", 1)[0] + f":{free_port()}/rag"
    checks = by_name(check_branches({"experiment": postgres_db, "gone": closed}))
    assert checks["neon.branch.experiment"].ok and not checks["neon.branch.gone"].ok
