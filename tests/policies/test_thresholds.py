"""Both sides of every policy threshold: the accepted boundary and the first rejected value,
the levels the rules declare in code, and CORS patterns that admit every site."""

from __future__ import annotations

import json

import pytest

import policies.check as check
from components.kong.cors import origin_allows_any_site
from policies.check import evaluate, policy_settings
from policies.pack import POLICIES
from tests.harness import run_program
from tests.policies.test_policies import (
    KONG,
    by_name,
    drop,
    edit_kong_yml,
    mutated,
    publish_on_every_interface,
    set_input,
)

COLLECTION = "qdrant-collection-docs_index_mxbai"
MEMBER = {
    "qdrant-node": "qdrant-node-{}-service",
    "neon-storage-safekeeper": "neon-storage-safekeeper-{}-service",
}
"""The resource that runs quorum member `{}` (a Swarm service, or a container still)."""
QUORUMS = {
    "qdrant-node": "qdrant-nodes-odd-at-least-3",
    "neon-storage-safekeeper": "neon-safekeepers-odd-at-least-3",
}


@pytest.fixture(scope="module")
def prod_run():
    return run_program("prod")


@pytest.fixture(scope="module")
def five_node_run():
    return run_program(
        "prod", overrides={"qdrant": {"nodes": 5, "collections": []}, "neon": {"safekeepers": 5}}
    )


def rules_broken(run, environment="prod") -> set[str]:
    return {v.rule for v in evaluate(run, "prod", environment)}


@pytest.mark.parametrize(
    ("key", "accepted", "rejected", "rule"),
    [
        ("replication_factor", 2, 1, "qdrant-replication-factor-at-least-2"),
        ("replication_factor", 3, 4, "qdrant-replication-factor-at-most-nodes"),
        ("write_consistency_factor", 2, 3, "qdrant-write-consistency-within-replication"),
    ],
)
def test_collection_thresholds_on_both_sides(prod_run, key, accepted, rejected, rule):
    assert rule not in rules_broken(mutated(prod_run, set_input(COLLECTION, key, accepted)))
    assert rule in rules_broken(mutated(prod_run, set_input(COLLECTION, key, rejected)))


def test_a_configured_minimum_replication_factor_moves_the_boundary(prod_run, tmp_path, monkeypatch):
    (tmp_path / "prod.json").write_text(
        json.dumps({"all": "mandatory", "qdrant-replication-factor-at-least-2": {"minReplicationFactor": 3}})
    )
    monkeypatch.setattr(check, "CONFIG_DIR", tmp_path)
    rule = "qdrant-replication-factor-at-least-2"
    assert rule in rules_broken(prod_run)
    assert rule not in rules_broken(mutated(prod_run, set_input(COLLECTION, "replication_factor", 3)))


@pytest.mark.parametrize(
    ("prefix", "rule"),
    [
        ("qdrant-node", "qdrant-nodes-odd-at-least-3"),
        ("neon-storage-safekeeper", "neon-safekeepers-odd-at-least-3"),
    ],
)
def test_quorums_of_five_pass_and_four_fail(five_node_run, prefix, rule):
    assert rule not in rules_broken(five_node_run)
    four = mutated(five_node_run, drop(MEMBER[prefix].format(4)))
    assert rule in rules_broken(four)
    messages = [v.message for v in evaluate(four, "prod", "prod") if v.rule == rule]
    assert messages and "4" in messages[0]


@pytest.mark.parametrize("prefix", ["qdrant-node", "neon-storage-safekeeper"])
def test_three_members_is_the_smallest_quorum(prod_run, prefix):
    rule = {
        "qdrant-node": "qdrant-nodes-odd-at-least-3",
        "neon-storage-safekeeper": "neon-safekeepers-odd-at-least-3",
    }
    assert rule[prefix] not in rules_broken(prod_run)
    one = mutated(mutated(prod_run, drop(MEMBER[prefix].format(2))), drop(MEMBER[prefix].format(1)))
    assert rule[prefix] in rules_broken(one)  # odd, but below the minimum


def test_quorum_spread_on_two_of_three_hosts_is_reported(prod_run):
    def two_hosts(run) -> None:
        placement = by_name(run, "qdrant-node-2-service").inputs["taskSpec"]["placement"]
        placement["constraints"] = ["node.labels.rag-infra.host.0==true"]

    def unpinned(run) -> None:
        by_name(run, "qdrant-node-2-service").inputs["taskSpec"]["placement"].pop("constraints")

    assert "stack-quorum-spread-over-hosts" not in rules_broken(prod_run)
    assert "stack-quorum-spread-over-hosts" in rules_broken(mutated(prod_run, two_hosts))
    messages = [v.message for v in evaluate(mutated(prod_run, unpinned), "prod", "prod")]
    assert (
        "Qdrant nodes must each be pinned to a host (a service's rag-infra.host.<index> constraint)"
        in messages
    )


DECLARED = {policy.name: "mandatory" for policy in POLICIES} | {"stack-hosts-for-a-quorum": "advisory"}


def test_levels_declared_in_code():
    """The level each rule carries when no config names it (the CLI's fallback)."""
    assert {p.name: p.enforcement_level.value for p in POLICIES} == DECLARED


def test_a_config_without_levels_falls_back_to_the_declared_ones(tmp_path, monkeypatch):
    (tmp_path / "prod.json").write_text("{}")
    monkeypatch.setattr(check, "CONFIG_DIR", tmp_path)
    assert {p.name: policy_settings("prod", p)[0] for p in POLICIES} == DECLARED


@pytest.mark.parametrize(
    "origin", ["*", ".*", "^.*$", ".+", "https?://.*", "https://.*", "(.*)", "[^/]+://.+"]
)
def test_patterns_that_admit_every_site_are_wildcards(prod_run, origin):
    assert origin_allows_any_site(origin)
    run = mutated(prod_run, edit_kong_yml(lambda d: d["plugins"][0]["config"].update(origins=[origin])))
    assert "kong-cors-origins-not-wildcard" in rules_broken(run)


@pytest.mark.parametrize(
    "origin", ["https://dashboard.example.com", r"https://.*\.example\.com", r"https://(a|b)\.example\.com"]
)
def test_patterns_for_named_sites_are_not(prod_run, origin):
    assert not origin_allows_any_site(origin)
    run = mutated(prod_run, edit_kong_yml(lambda d: d["plugins"][0]["config"].update(origins=[origin])))
    assert "kong-cors-origins-not-wildcard" not in rules_broken(run)


def test_an_empty_origin_list_is_a_wildcard_to_kong(prod_run):
    run = mutated(prod_run, edit_kong_yml(lambda d: d["plugins"][0]["config"].update(origins=[])))
    assert "kong-cors-origins-not-wildcard" in rules_broken(run)


@pytest.fixture(scope="module")
def prod_with_manager():
    return run_program(
        "prod",
        overrides={
            "kong": {
                "database": "off",
                "memoryMb": 1024,
                "manager": True,
                "cors": {"origins": ["https://a.example"]},
            }
        },
    )


@pytest.mark.parametrize(
    ("port", "what"), [(8001, "admin API"), (8100, "status listener"), (8002, "Kong Manager")]
)
def test_every_kong_operator_port_must_stay_on_loopback(prod_with_manager, port, what):
    assert "kong-admin-loopback-only" not in rules_broken(prod_with_manager)
    # The service publishes it (Swarm: on every interface of the node).
    violations = evaluate(mutated(prod_with_manager, publish_on_every_interface(KONG, port)), "prod", "prod")
    assert [v.message for v in violations if v.rule == "kong-admin-loopback-only"] == [
        f"Kong's {what} (port {port}) is published on 0.0.0.0; use 127.0.0.1"
    ]

    # The forwarder publishes it on every interface instead of loopback.
    def forward_everywhere(run) -> None:
        for entry in by_name(run, "operator-access-container").inputs["ports"]:
            if entry["internal"] == port:
                entry.pop("ip")

    violations = evaluate(mutated(prod_with_manager, forward_everywhere), "prod", "prod")
    assert [v.message for v in violations if v.rule == "kong-admin-loopback-only"] == [
        f"operator access publishes port {port} on 0.0.0.0; use 127.0.0.1"
    ]


@pytest.mark.parametrize(
    ("image", "pinned"),
    [("qdrant/qdrant:dev", False), ("qdrant/qdrant:stable", False), ("qdrant/qdrant:v1.19.0", True),
     ("registry:5000/q:1.2", True)],
)  # fmt: skip
def test_floating_tags_are_not_pinned(prod_run, image, pinned):
    run = mutated(prod_run, set_input("qdrant-image", "name", image))
    assert ("container-image-pinned" not in rules_broken(run)) == pinned
    # The same reference run by a service directly (no pulled image between).
    run = mutated(
        prod_run,
        lambda r: by_name(r, "qdrant-node-0-service").inputs["taskSpec"]["containerSpec"].update(image=image),
    )
    assert ("container-image-pinned" not in rules_broken(run)) == pinned
