"""SafekeeperReady, the gate between two safekeepers' rollouts, against strict fakes of the
safekeeper API: a new member passes once it answers as itself; after a rollout it passes only
once it holds every timeline its peers hold, flushed up to what they committed."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from components.neon.safekeeper_gate import SafekeeperGateError, SafekeeperReadyProvider, parse_lsn
from tests.support.dynamic import roundtrip
from tests.support.fake_neon import FakeSafekeeper, format_lsn

TENANT = "a" * 32
MAIN, BRANCH = "b" * 32, "c" * 32


@pytest.fixture
def quorum():
    with FakeSafekeeper(1) as sk0, FakeSafekeeper(2) as sk1, FakeSafekeeper(3) as sk2:
        yield [sk0, sk1, sk2]


@pytest.fixture
def provider():
    return roundtrip(SafekeeperReadyProvider())


def props(quorum, index: int = 2, **changes) -> dict:
    return {
        "urls": [sk.url for sk in quorum],
        "index": index,
        "node_id": index + 1,
        "tenant_id": TENANT,
        "timeline_ids": {"main": MAIN, "pitr": BRANCH},
        "revision": "r1",
        "timeout": 1.0,
        "interval": 0.1,
    } | changes


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_lsns_read_as_the_safekeeper_prints_them():
    assert parse_lsn("0/16B5A50") == 0x16B5A50
    assert parse_lsn("1/0") == 1 << 32
    assert parse_lsn(format_lsn(0x2_0000_00FF)) == 0x2_0000_00FF
    with pytest.raises(SafekeeperGateError, match="unreadable LSN 'x'"):
        parse_lsn("x")


def test_a_new_member_passes_once_it_answers_as_itself(quorum, provider):
    # Its peers hold a timeline it does not have yet: a new member gets it from the compute later.
    quorum[0].hold(TENANT, MAIN, flush=500, commit=500)
    result = provider.create(props(quorum))
    assert result.id == "safekeeper-3" and "node 3" in result.outs["seen"]


def test_a_member_that_does_not_answer_times_out_naming_it(quorum, provider):
    urls = [quorum[0].url, quorum[1].url, closed_port()]
    with pytest.raises(SafekeeperGateError, match=r"timed out after 1s .* safekeeper 2 does not answer yet"):
        provider.create(props(quorum, urls=urls))


def test_a_port_that_leads_to_another_member_fails_at_once(quorum, provider):
    started = time.monotonic()
    with pytest.raises(SafekeeperGateError, match=r"safekeeper 2 at .* reports node id 2, expected 3"):
        provider.create(props(quorum, urls=[quorum[0].url, quorum[1].url, quorum[1].url], timeout=30.0))
    assert time.monotonic() - started < 5, "waiting will not fix a wrong member"


def test_after_a_rollout_a_member_behind_its_peers_holds_the_next_one_back(quorum, provider):
    for sk in quorum[:2]:
        sk.hold(TENANT, MAIN, flush=0x5000, commit=0x4000)
    quorum[2].hold(TENANT, MAIN, flush=0x3FFF, commit=0x3000)
    with pytest.raises(
        SafekeeperGateError, match=rf"timeline {MAIN} flushed to 0/3FFF, peers committed 4000"
    ):
        provider.update("safekeeper-3", props(quorum), props(quorum, revision="r2"))
    # Exactly at the peers' commit LSN is caught up.
    quorum[2].hold(TENANT, MAIN, flush=0x4000, commit=0x4000)
    assert "every timeline caught up" in provider.update("sk", props(quorum), props(quorum)).outs["seen"]


def test_a_member_that_catches_up_while_the_gate_waits_passes(quorum, provider):
    quorum[0].hold(TENANT, MAIN, flush=0x9000, commit=0x9000)
    quorum[2].hold(TENANT, MAIN, flush=0x10, commit=0x10)
    timer = threading.Timer(0.3, quorum[2].hold, (TENANT, MAIN, 0x9000, 0x9000))
    timer.start()
    try:
        outs = provider.update("sk", props(quorum), props(quorum, timeout=5.0)).outs
    finally:
        timer.cancel()
    assert "caught up" in outs["seen"]


def test_after_a_rollout_a_member_missing_a_timeline_its_peers_hold_is_not_back(quorum, provider):
    quorum[1].hold(TENANT, BRANCH, flush=0x100, commit=0x100)
    with pytest.raises(SafekeeperGateError, match=rf"timeline {BRANCH} missing \(its peers hold it\)"):
        provider.update("sk", props(quorum), props(quorum))


def test_timelines_no_peer_holds_yet_do_not_hold_it_back(quorum, provider):
    # `pitr` is not written anywhere yet; the member and its peers agree on main.
    for sk in quorum:
        sk.hold(TENANT, MAIN, flush=0x700, commit=0x700)
    assert provider.update("sk", props(quorum), props(quorum)).outs["seen"]


def test_what_the_member_learned_since_the_peers_were_read_is_not_held_against_it(quorum, provider):
    for sk in quorum[:2]:
        sk.hold(TENANT, MAIN, flush=0x4000, commit=0x4000)
    # It has all the peers had committed, and has heard of a newer commit it is still receiving.
    quorum[2].hold(TENANT, MAIN, flush=0x4000, commit=0x5000)
    assert "caught up" in provider.update("sk", props(quorum), props(quorum)).outs["seen"]


def test_after_a_rollout_another_member_down_holds_the_next_one_back(quorum, provider):
    """Stopping the next member with one already down would leave no majority of three."""
    for sk in quorum:
        sk.hold(TENANT, MAIN, flush=0x700, commit=0x700)
    urls = [closed_port(), quorum[1].url, quorum[2].url]
    with pytest.raises(
        SafekeeperGateError, match=r"safekeeper 0 does not answer \(ConnectionError\): .* majority"
    ):
        provider.update("sk", props(quorum), props(quorum, urls=urls))
    # A new member (create) only has to answer: the others may still be starting.
    assert provider.create(props(quorum, urls=urls)).outs["seen"]


def test_it_runs_again_after_every_rollout_of_its_member_only(provider, quorum):
    same = props(quorum)
    assert not provider.diff("sk", same, dict(same)).changes
    assert provider.diff("sk", same, props(quorum, revision="r2")).changes
    # The timeline ids are what it checks, not what it waits for: a new branch is no rollout.
    assert not provider.diff("sk", same, props(quorum, timeline_ids={"main": MAIN})).changes
