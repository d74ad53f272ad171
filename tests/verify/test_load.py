"""The load test: Locust in its own process, judged against the plan's marks and against the
generator's own ceiling on this machine."""

from __future__ import annotations

import pytest

from tests.verify.test_gate import gates
from verify.load import LoadResult, generator_ceiling, judge, run_load
from verify.settings import LoadSettings

MARKS = LoadSettings()  # the plan's numbers: p95 <= 10 ms, >= 500 qps, errors <= 0.1 %
FAST = LoadResult(requests=30000, failures=0, error_rate=0.0, qps=1000.0, p50_ms=2, p95_ms=4, p99_ms=8)
CEILING = LoadResult(requests=30000, failures=0, error_rate=0.0, qps=9000.0, p50_ms=1, p95_ms=2, p99_ms=3)


@pytest.mark.parametrize(
    ("change", "ok", "named"),
    [
        ({}, True, "1000 qps"),
        ({"p95_ms": 10}, True, "p50/p95/p99 2/10/8"),
        ({"p95_ms": 11}, False, "p50/p95/p99 2/11/8"),
        ({"qps": 500.0}, True, "500 qps"),
        ({"qps": 499.0}, False, "499 qps"),
        ({"error_rate": 0.001}, True, "errors 0.1%"),
        ({"error_rate": 0.0011}, False, "errors 0.11%"),
    ],
)
def test_both_sides_of_every_mark(change, ok, named):
    check = judge("load.qdrant-lb", LoadResult(**{**FAST.__dict__, **change}), MARKS, CEILING)
    assert check.ok is ok and named in check.saw


def test_a_result_near_the_generators_ceiling_is_inconclusive():
    low = LoadResult(**{**CEILING.__dict__, "qps": 600.0})
    check = judge("load.qdrant-lb", FAST, MARKS, low)
    assert not check.ok and check.saw.startswith("inconclusive: the generator itself reaches only 600 qps")


def test_the_generator_ceiling_is_measured_here():
    ceiling = generator_ceiling(seconds=1.5, users=10)
    assert ceiling.requests > 0 and ceiling.failures == 0 and ceiling.qps > 0


def test_a_short_run_against_the_qdrant_stand_in(tmp_path):
    from tests.support.fake_qdrant import FakeQdrantCluster

    with FakeQdrantCluster() as cluster:
        cluster.handle(
            "PUT", "/collections/c", {"vectors": {"size": 4, "distance": "Dot"}}, {"api-key": "test-key"}
        )
        ok = run_load(cluster.url, "/collections/c/points/search", headers={"api-key": "test-key"},
                      body={"vector": [0.1] * 4, "limit": 3}, seconds=1.5, rate=40, users=4)  # fmt: skip
        wrong = run_load(cluster.url, "/collections/c/points/search", headers={"api-key": "wrong"},
                         body={"vector": [0.1] * 4}, seconds=1.0, rate=20, users=2)  # fmt: skip
    assert ok.requests > 0 and ok.failures == 0 and ok.p95_ms > 0
    assert wrong.requests > 0 and wrong.error_rate == 1.0


def test_the_gate_runs_the_load_test_only_when_configured(program):
    (gate,) = gates(program("dev"))
    create = gate.inputs["create"]
    assert "--load" not in create
    run = program("dev", overrides={"verify": {"load": {"enabled": True, "seconds": 10}}})
    assert "--load" in gates(run)[0].inputs["create"]
