"""Tenant and timeline providers against a fake storage controller, after dill serialization."""

from __future__ import annotations

import pytest

from components.neon.api import NeonApiError
from components.neon.tenant import NeonTenantProvider
from components.neon.timeline import NeonTimelineProvider, rfc3339_utc
from tests.support.dynamic import roundtrip
from tests.support.fake_neon import FakeSafekeeper, FakeStorageController

TENANT = "0123456789abcdef0123456789abcdef"
MAIN = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
DEV = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


@pytest.fixture
def controller():
    with FakeStorageController() as fake:
        yield fake


@pytest.fixture
def tenants():
    return roundtrip(NeonTenantProvider())


@pytest.fixture
def timelines():
    return roundtrip(NeonTimelineProvider())


def tenant_props(url, **changes):
    return {
        "controller_url": url,
        "tenant_id": TENANT,
        "pitr_interval": "30 days",
        "timeout": 10.0,
        **changes,
    }


def timeline_props(url, timeline=MAIN, **changes):
    base = {
        "controller_url": url,
        "tenant_id": TENANT,
        "timeline_id": timeline,
        "name": "main",
        "pg_version": 17,
        "ancestor_timeline_id": None,
        "ancestor_start_lsn": None,
        "ancestor_timestamp": None,
        "timeout": 10.0,
    }
    return {**base, **changes}


def test_tenant_is_created_through_the_controller_with_pitr(controller, tenants):
    result = tenants.create(tenant_props(controller.url))
    assert result.id == TENANT
    post = controller.calls("POST")[0]
    assert post[1] == "/v1/tenant" and post[2] == {"new_tenant_id": TENANT, "pitr_interval": "30 days"}
    assert controller.tenants[TENANT]["pitr_interval"] == "30 days"


def test_tenant_create_is_idempotent_and_adopts_the_config(controller, tenants):
    controller.tenants[TENANT] = {"pitr_interval": "7 days"}
    tenants.create(tenant_props(controller.url))
    assert controller.tenants[TENANT]["pitr_interval"] == "30 days"


def test_tenant_create_waits_out_503_while_the_controller_starts(controller, tenants):
    controller.unavailable = 3
    tenants.create(tenant_props(controller.url))
    assert TENANT in controller.tenants


def test_changed_pitr_is_an_update(controller, tenants):
    old = tenant_props(controller.url)
    tenants.create(old)
    new = tenant_props(controller.url, pitr_interval="14 days")
    diff = tenants.diff(TENANT, old, new)
    assert diff.changes and diff.replaces == []
    result = tenants.update(TENANT, old, new)
    assert controller.tenants[TENANT]["pitr_interval"] == "14 days"
    assert result.outs["pitr_interval"] == "14 days"


def test_main_timeline_bootstraps_and_identical_recreate_is_201(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    first = timelines.create(timeline_props(controller.url))
    again = timelines.create(timeline_props(controller.url))
    assert first.id == again.id == MAIN
    assert controller.calls("POST")[-1][2] == {"new_timeline_id": MAIN, "pg_version": 17}


def test_timeline_with_other_parameters_is_a_clear_error(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    with pytest.raises(NeonApiError, match=r"already exists .* with other parameters"):
        timelines.create(timeline_props(controller.url, pg_version=16))


def test_429_while_a_create_is_in_progress_is_retried(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    controller.busy_creates = 2
    timelines.create(timeline_props(controller.url))
    assert len([c for c in controller.calls("POST") if c[1].endswith("/timeline")]) == 3


def test_branch_pins_the_ancestors_lsn_explicitly(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    result = timelines.create(timeline_props(controller.url, DEV, name="dev", ancestor_timeline_id=MAIN))
    body = controller.calls("POST")[-1][2]
    assert body == {"new_timeline_id": DEV, "ancestor_timeline_id": MAIN, "ancestor_start_lsn": "0/2000000"}
    assert result.outs["resolved_start_lsn"] == "0/2000000"


def test_branch_at_a_timestamp_is_resolved_to_an_lsn(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    props = timeline_props(
        controller.url, DEV, ancestor_timeline_id=MAIN, ancestor_timestamp="2026-11-01T12:00:00+01:00"
    )
    result = timelines.create(props)
    assert controller.last_timestamp == "2026-11-01T11:00:00Z"
    assert controller.calls("POST")[-1][2]["ancestor_start_lsn"] == "0/1A2B3C0"
    assert result.outs["resolved_start_lsn"] == "0/1A2B3C0"


def _branch_at(controller, timelines, timestamp: str):
    return timelines.create(
        timeline_props(
            controller.url, DEV, name="dev", ancestor_timeline_id=MAIN, ancestor_timestamp=timestamp
        )
    )


def test_a_timestamp_older_than_the_retention_is_refused_naming_the_oldest_point(
    controller, tenants, timelines
):
    """The pageserver answers `past` with its oldest readable LSN, not the one asked for."""
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    with pytest.raises(NeonApiError) as err:
        _branch_at(controller, timelines, "2026-10-01T00:00:00Z")
    assert "is older than what it retains; the oldest restorable point is LSN 0/1000000" in str(err.value)
    assert (TENANT, DEV) not in controller.timelines


def test_a_timeline_without_commits_is_refused(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    controller.commits = []
    with pytest.raises(NeonApiError, match=r"finds no commit \(nodata\); the oldest restorable point is LSN"):
        _branch_at(controller, timelines, "2026-11-01T11:30:00Z")
    assert (TENANT, DEV) not in controller.timelines


def test_a_timestamp_after_the_last_commit_branches_at_the_latest_lsn(
    controller, tenants, timelines, monkeypatch
):
    monkeypatch.setattr("pulumi.log.info", lambda *a, **k: None)
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    result = _branch_at(controller, timelines, "2026-11-02T00:00:00Z")
    assert result.outs["resolved_start_lsn"] == controller.timelines[(TENANT, MAIN)]["last_record_lsn"]


def test_a_timestamp_between_commits_takes_the_last_commit_before_it(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    assert _branch_at(controller, timelines, "2026-11-01T11:59:00Z").outs["resolved_start_lsn"] == "0/1A2B3C0"


def test_a_start_lsn_below_the_gc_cutoff_is_named(controller, tenants, timelines):
    """The pageserver's 406 arrives through the controller as a 409: it is not "already exists"."""
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    with pytest.raises(NeonApiError, match=r"cannot start at LSN 0/10: .*earlier than latest GC cutoff"):
        timelines.create(
            timeline_props(controller.url, DEV, ancestor_timeline_id=MAIN, ancestor_start_lsn="0/10")
        )


def test_a_retried_branch_create_adopts_the_branch_although_the_lsn_moved(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    first = timelines.create(timeline_props(controller.url, DEV, ancestor_timeline_id=MAIN))
    controller.write(TENANT, MAIN)
    again = timelines.create(timeline_props(controller.url, DEV, ancestor_timeline_id=MAIN))
    assert again.outs["resolved_start_lsn"] == first.outs["resolved_start_lsn"] == "0/2000000"
    assert len([c for c in controller.calls("POST") if c[1].endswith("/timeline")]) == 2


def test_a_tenant_create_waits_until_the_pageserver_is_schedulable(controller, tenants):
    controller.unschedulable = 2
    tenants.create(tenant_props(controller.url))
    assert TENANT in controller.tenants
    assert len(controller.calls("POST")) == 3


def test_changing_main_is_refused_with_the_safe_path(timelines):
    old = timeline_props("http://x")
    with pytest.raises(
        NeonApiError,
        match=r"refusing to replace the main timeline \(pg_version 17 -> 16\).*migration.postgres",
    ):
        timelines.diff(MAIN, old, {**old, "pg_version": 16})
    with pytest.raises(NeonApiError, match="refusing to replace the main timeline"):
        timelines.update(MAIN, old, {**old, "pg_version": 16})
    assert not timelines.diff(MAIN, old, {**old, "controller_url": "http://y"}).replaces


def test_a_branch_ignores_pg_version_and_is_replaced_create_first_under_a_new_id(timelines):
    old = timeline_props("http://x", DEV, ancestor_timeline_id=MAIN, ancestor_start_lsn="0/10")
    assert not timelines.diff(DEV, old, {**old, "pg_version": 16}).replaces
    moved = {**old, "ancestor_start_lsn": "0/20", "timeline_id": "c" * 32}
    diff = timelines.diff(DEV, old, moved)
    assert diff.replaces == ["timeline_id", "ancestor_start_lsn"] and not diff.delete_before_replace


def test_branch_diff_replaces_on_a_new_start_point(timelines):
    old = timeline_props("http://x", DEV, ancestor_timeline_id=MAIN, ancestor_start_lsn="0/10")
    diff = timelines.diff(DEV, old, {**old, "ancestor_start_lsn": "0/20"})
    # Under the same id (never planned by NeonDatabase) the old one must go first.
    assert diff.replaces == ["ancestor_start_lsn"] and diff.delete_before_replace
    assert not timelines.diff(DEV, old, dict(old)).changes


def test_deletion_is_polled_to_completion(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    controller.delete_rounds = 3
    with FakeSafekeeper() as sk0, FakeSafekeeper() as sk1:
        timelines.delete(MAIN, timeline_props(controller.url, safekeeper_urls=[sk0.url, sk1.url]))
        for safekeeper in (sk0, sk1):
            assert [r[:2] for r in safekeeper.requests] == [
                ("DELETE", f"/v1/tenant/{TENANT}/timeline/{MAIN}")
            ]
    deletes = controller.calls("DELETE")
    assert len(deletes) == 4  # three 409 "in progress", then 200
    assert (TENANT, MAIN) not in controller.timelines
    assert controller.requests[-1][0] == "GET"  # confirmed gone (404) before the safekeepers


def test_a_safekeeper_that_cannot_be_reached_fails_the_deletion_naming_it(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    controller.delete_rounds = 0
    with pytest.raises(NeonApiError, match=r"not from the safekeeper at http://127.0.0.1:9"):
        timelines.delete(
            MAIN, timeline_props(controller.url, safekeeper_urls=["http://127.0.0.1:9"], timeout=1.0)
        )


def test_a_parent_with_branches_is_not_deleted(controller, tenants, timelines):
    tenants.create(tenant_props(controller.url))
    timelines.create(timeline_props(controller.url))
    timelines.create(timeline_props(controller.url, DEV, ancestor_timeline_id=MAIN))
    with pytest.raises(NeonApiError, match="has child branches"):
        timelines.delete(MAIN, timeline_props(controller.url))


def test_unreachable_controller_names_the_url(tenants):
    with pytest.raises(NeonApiError, match=r"cannot reach the storage controller at http://127.0.0.1:9"):
        tenants.create(tenant_props("http://127.0.0.1:9", timeout=1.0))


def test_rfc3339_utc():
    assert rfc3339_utc("2026-01-02T03:04:05+02:00") == "2026-01-02T01:04:05Z"
    assert rfc3339_utc("2026-01-02T03:04:05.5Z") == "2026-01-02T03:04:05.500000Z"


def test_tenant_delete_waits_until_it_is_gone(controller, tenants):
    tenants.create(tenant_props(controller.url))
    tenants.delete(TENANT, tenant_props(controller.url))
    assert TENANT not in controller.tenants
    assert controller.requests[-1][:2] == ("GET", f"/v1/tenant/{TENANT}")
