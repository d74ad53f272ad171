"""The Swarm service builder's pure parts: config and secret names, placement constraints."""

from __future__ import annotations

import pytest

from components.platform.service import MAX_OBJECT_NAME, object_name, placement_constraint


def test_a_name_changes_with_the_content_and_only_with_it():
    name = object_name("rag-infra-prod", "qdrant-0", "/run/secrets/qdrant-api-key.yaml", "key: a", "salt")
    assert name == object_name(
        "rag-infra-prod", "qdrant-0", "/run/secrets/qdrant-api-key.yaml", "key: a", "salt"
    )
    assert name != object_name(
        "rag-infra-prod", "qdrant-0", "/run/secrets/qdrant-api-key.yaml", "key: b", "salt"
    )
    assert name.startswith("rag-infra-prod-qdrant-0-qdrant-api-key-yaml-")


def test_the_digest_is_keyed_by_the_stack_salt_so_it_tells_nothing_about_a_secret():
    import hashlib

    name = object_name("p", "a", "/f", "hunter2", "salt-1")
    assert name != object_name("p", "a", "/f", "hunter2", "salt-2")
    assert hashlib.sha256(b"hunter2").hexdigest()[:12] not in name


@pytest.mark.parametrize("alias", ["kong", "storage-controller-db", "x" * 20])
def test_names_stay_within_swarms_limit_and_its_alphabet(alias):
    name = object_name("rag-infra-production", alias, "/etc/a-very-long-config-file-name.toml", "c", "s")
    assert len(name) <= MAX_OBJECT_NAME
    assert name[0].isalnum() and name[-1].isalnum()
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_a_prefix_that_leaves_no_room_is_refused_with_its_name():
    with pytest.raises(ValueError, match="shorten the project or stack name"):
        object_name("p" * 50, "alias", "/f", "c", "s")


def test_the_placement_constraint_names_the_node_label_the_swarm_sets():
    assert placement_constraint(2) == "node.labels.rag-infra.host.2==true"
