"""The Swarm service builder's pure parts: config and secret names, placement constraints."""

from __future__ import annotations

import pytest

from components.platform.hosts import service_image
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
    with pytest.raises(
        ValueError, match=r"prefix 'ppp.*' leaves no room .* shorten the project or stack name"
    ):
        object_name("p" * 47, "alias", "/f", "c", "s")
    # The longest prefix that still leaves four characters of alias and file.
    assert len(object_name("p" * 46, "alias", "/f", "c", "s")) == MAX_OBJECT_NAME


def test_the_same_content_in_two_services_gets_two_names_even_when_cut():
    """The S3 credentials file is mounted by the pageserver and every safekeeper: one object
    each, however short the room for the alias."""
    prefix = "rag-infra-policy-test-production"
    names = {
        object_name(prefix, f"safekeeper-{i}", "/run/secrets/aws-credentials", "same", "s") for i in range(3)
    }
    assert len(names) == 3 and all(len(n) <= MAX_OBJECT_NAME for n in names)


def test_the_placement_constraint_names_the_node_label_the_swarm_sets():
    assert placement_constraint(2) == "node.labels.rag-infra.host.2==true"


def test_a_service_runs_the_registry_digest_or_a_local_image_by_name_and_tag():
    digest = f"ghcr.io/neondatabase/neon@sha256:{'1' * 64}"
    pinned = f"ghcr.io/neondatabase/neon:release-9129@sha256:{'2' * 64}"
    assert service_image(pinned, digest) == digest
    # Built or loaded on the host: no registry digest, and the pinned one names nothing there.
    assert service_image(pinned, "") == "ghcr.io/neondatabase/neon:release-9129"
    assert service_image("kong:3.9.3", "") == "kong:3.9.3"
