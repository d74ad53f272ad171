"""Typed settings: defaults, dev vs prod, and bad input rejected with the key, value and rule."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from components.platform.settings import image_version
from components.settings import SettingsError, config_schema, parse_settings
from tests.harness import ROOT, RecordingMocks, run_program, stack_config

ROUTE = {"name": "rag-search", "paths": ["/rag-search"], "upstreamUrl": "http://docs:3401"}


def test_defaults_are_the_plans_sizes():
    settings = parse_settings({}, stack="dev")
    assert settings.environment == "dev"
    assert settings.docker_hosts == ("unix:///var/run/docker.sock",)
    assert settings.qdrant.nodes == 3 and settings.qdrant.lb_port == 6333
    assert settings.neon.safekeepers == 1 and settings.neon.compute_port == 5435
    assert settings.kong.proxy_port == 8000 and settings.kong.database == "off"
    assert [r.name for r in settings.kong.routes] == ["rag-search", "rag-query"]


def test_prod_defaults_to_a_safekeeper_quorum():
    settings = parse_settings(
        {"environment": "prod", "kong": {"cors": {"origins": ["https://a.example"]}}}, stack="p"
    )
    assert settings.neon.safekeepers == 3
    # A default, not a rule: the stack file's own count wins.
    five = parse_settings(
        {"environment": "prod", "neon": {"safekeepers": 5}, "kong": {"cors": {"origins": ["https://a"]}}},
        stack="p",
    )
    assert five.neon.safekeepers == 5


def test_settings_are_immutable():
    settings = parse_settings({}, stack="dev")
    with pytest.raises(ValidationError, match="frozen"):
        settings.environment = "prod"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.qdrant.nodes = 5  # type: ignore[misc]


def test_image_version_reads_tags():
    assert image_version("qdrant/qdrant:v1.19.0") == (1, 19, 0)
    assert image_version("nginx:1.30.4-alpine") == (1, 30, 4)
    assert image_version("repo/x@sha256:" + "a" * 64) is None


BAD = [
    ({"qdrant": {"nodes": 2}}, "rag-infra:qdrant.nodes must be an odd number >= 1, got 2"),
    ({"qdrant": {"nodes": "3"}}, "rag-infra:qdrant.nodes must be an odd number >= 1, got '3'"),
    ({"qdrant": {"nodes": True}}, "rag-infra:qdrant.nodes must be an odd number >= 1, got True"),
    (
        {"qdrant": {"image": "qdrant/qdrant:dev"}},
        "rag-infra:qdrant.image must be an image pinned by a release tag or digest (a tag with a version), "
        "got 'qdrant/qdrant:dev'",
    ),
    (
        {"qdrant": {"collections": [{"name": "_rag_migration_offsets", "vectorSize": 8}]}},
        "rag-infra:qdrant.collections[0].name must not start with _rag_migration",
    ),
    (
        {"kong": {"routes": [ROUTE, {**ROUTE, "name": "rag-search-v2"}]}},
        "rag-infra:kong.routes[].paths lists '/rag-search' twice",
    ),
    (
        {"kong": {"proxyPort": 6333}},
        "rag-infra:qdrant.lbPort and rag-infra:kong.proxyPort both use host port 6333",
    ),
    (
        {"neon": {"computePort": 8000}},
        "rag-infra:neon.computePort and rag-infra:kong.proxyPort both use host port 8000",
    ),
    (
        {"neon": {"branches": [{"name": "b", "compute": True, "computePort": 8001}]}},
        "rag-infra:neon.branches[0].computePort and rag-infra:kong.adminPort both use host port 8001",
    ),
    (
        {"kong": {"statusPort": 1234}},
        "the storage controller (fixed) and rag-infra:kong.statusPort both use host port 1234",
    ),
    (
        {"migration": {"postgres": {"enabled": True}}, "features": {"neon": False}},
        "rag-infra:migration.postgres.enabled needs the Neon tier (features.neon: true)",
    ),
    (
        {
            "migration": {"qdrant": {"enabled": True, "sourceUrl": "http://old:6333", "collections": ["c"]}},
            "features": {"qdrantCluster": False},
        },
        "rag-infra:migration.qdrant.enabled needs the Qdrant cluster",
    ),
    (
        {"qdrant": {"nodez": 3}},
        "rag-infra:qdrant has unknown key(s) nodez; allowed: backups, collections, image,",
    ),
    (
        {"qdrant": {"image": "qdrant/qdrant"}},
        "rag-infra:qdrant.image must be an image pinned by a release tag",
    ),
    ({"qdrant": {"image": "qdrant/qdrant:latest"}}, "(not `latest`), got 'qdrant/qdrant:latest'"),
    ({"qdrant": {"image": "qdrant/qdrant:v1.12.4"}}, "rag-infra:qdrant.image must be Qdrant >= 1.13.3"),
    (
        {"qdrant": {"lbPort": 70000}},
        "rag-infra:qdrant.lbPort must be a whole number >= 1 and <= 65535, got 70000",
    ),
    (
        {"qdrant": {"collections": [{"name": "c", "vectorSize": 8, "replicationFactor": 5}]}},
        "rag-infra:qdrant.collections[0].replicationFactor must be <= qdrant.nodes (3), got 5",
    ),
    (
        {
            "qdrant": {
                "collections": [
                    {"name": "c", "vectorSize": 8, "replicationFactor": 2, "writeConsistencyFactor": 3}
                ]
            }
        },
        "rag-infra:qdrant.collections[0].writeConsistencyFactor must be <= replicationFactor (2), got 3",
    ),
    (
        {"qdrant": {"collections": [{"name": "c", "vectorSize": 8, "distance": "cosine"}]}},
        "rag-infra:qdrant.collections[0].distance must be one of Cosine, Dot, Euclid, Manhattan, "
        "got 'cosine'",
    ),
    (
        {"qdrant": {"collections": [{"name": "c", "vectorSize": 8}, {"name": "c", "vectorSize": 8}]}},
        "rag-infra:qdrant.collections lists 'c' twice",
    ),
    ({"environment": "staging"}, "rag-infra:environment must be one of dev, prod, got 'staging'"),
    ({"dockerHosts": []}, "rag-infra:dockerHosts must be a non-empty list of Docker host URLs, got []"),
    (
        {"dockerHosts": ["docker-1:2375"]},
        "rag-infra:dockerHosts[0] must be a unix://, ssh:// or tcp:// Docker host URL",
    ),
    ({"features": {"neon": "yes"}}, "rag-infra:features.neon must be true or false, got 'yes'"),
    ({"features": {"kong": False}}, "rag-infra:features has unknown key(s) kong"),
    ({"neon": {"pgVersion": 18}}, "rag-infra:neon.pgVersion must be a whole number >= 14 and <= 17, got 18"),
    ({"neon": {"safekeepers": 0}}, "rag-infra:neon.safekeepers must be a whole number >= 1 and <= 31, got 0"),
    ({"neon": {"branches": [{"name": "main"}]}}, "rag-infra:neon.branches[0].name must not be 'main'"),
    (
        {"neon": {"branches": [{"name": "pitr", "lsn": "0/1", "timestamp": "2026-01-01T00:00:00Z"}]}},
        "rag-infra:neon.branches[0] may set lsn or timestamp, not both",
    ),
    (
        {"neon": {"branches": [{"name": "pitr", "timestamp": "yesterday"}]}},
        "rag-infra:neon.branches[0].timestamp must be an ISO 8601 timestamp with a time zone, "
        "got 'yesterday'",
    ),
    ({"neon": {"objectStorage": {"bukket": "x"}}}, "rag-infra:neon.objectStorage has unknown key(s) bukket"),
    ({"neon": {"pgVersion": 16}}, "rag-infra:neon.computeImage runs Postgres 17 but neon.pgVersion is 16"),
    (
        {"kong": {"routes": [{**ROUTE, "methods": ["get"]}]}},
        "rag-infra:kong.routes[0].methods[0] must be an uppercase HTTP method",
    ),
    (
        {"kong": {"routes": [{**ROUTE, "name": "rag search"}]}},
        "rag-infra:kong.routes[0].name must be letters, digits",
    ),
    (
        {"kong": {"routes": [{**ROUTE, "paths": ["rag-search"]}]}},
        "rag-infra:kong.routes[0].paths[0] must be a plain path starting with / (no //), got 'rag-search'",
    ),
    ({"kong": {"routes": [{**ROUTE, "timeout": 5}]}}, "rag-infra:kong.routes[0] has unknown key(s) timeout"),
    ({"kong": {"database": "mysql"}}, "rag-infra:kong.database must be one of off, postgres, got 'mysql'"),
    (
        {"kong": {"rateLimit": {"policy": "cluster"}}},
        "rag-infra:kong.rateLimit.policy must be one of local, redis",
    ),
    (
        {"kong": {"rateLimit": {"minute": 100, "hour": 50}}},
        "rag-infra:kong.rateLimit.hour (50) must not be smaller",
    ),
    (
        {"kong": {"cors": {"origins": ["(unclosed"]}}},
        "rag-infra:kong.cors.origins[0] must be * or a valid regex",
    ),
    ({"kong": {"adminPort": 8000}}, "rag-infra:kong uses port 8000 for both proxyPort and adminPort"),
    ({"migration": {"qdrant": {"enabled": True}}}, "rag-infra:migration.qdrant.sourceUrl is required"),
    (
        {"migration": {"postgres": {"tables": ["chunks"]}}},
        "rag-infra:migration.postgres.tables[0] must be schema.table",
    ),
    ({"qdrnt": {"nodes": 3}}, "unknown config key(s) rag-infra:qdrnt"),
    ({"qdrant": {"collections": [{"name": "c"}]}}, "rag-infra:qdrant.collections[0].vectorSize is required"),
    (
        {"kong": {"routes": [{"name": "r", "paths": ["/r"]}]}},
        "rag-infra:kong.routes[0].upstreamUrl is required",
    ),
    ({"neon": "big"}, "rag-infra:neon must be an object, got 'big'"),
    (
        {"neon": {"controllerBackups": {"bucket": "Controller_Dumps"}}},
        "rag-infra:neon.controllerBackups.bucket must be an S3 bucket name, got 'Controller_Dumps'",
    ),
    (
        {"neon": {"controllerBackups": {"every": 6}}},
        "rag-infra:neon.controllerBackups has unknown key(s) every",
    ),
    (
        {"neon": {"branches": [{"name": "b", "computePort": 99999}]}},
        "computePort must be a whole number >= 1 and <= 65535",
    ),
]


@pytest.mark.parametrize(("values", "message"), BAD, ids=[m[:60] for _, m in BAD])
def test_bad_configuration_is_rejected_with_key_value_and_rule(values, message):
    with pytest.raises(SettingsError) as err:
        parse_settings(values, stack="dev")
    assert message in str(err.value)


def test_every_problem_is_reported_at_once_one_line_each():
    with pytest.raises(SettingsError) as err:
        parse_settings({"qdrant": {"nodes": 2, "lbPort": 0}, "kong": {"proxyPort": "80"}}, stack="dev")
    assert str(err.value).splitlines() == [
        "rag-infra:qdrant.nodes must be an odd number >= 1, got 2",
        "rag-infra:qdrant.lbPort must be a whole number >= 1 and <= 65535, got 0",
        "rag-infra:kong.proxyPort must be a whole number >= 1 and <= 65535, got '80'",
    ]


def test_prod_needs_explicit_cors_origins():
    with pytest.raises(SettingsError, match=r"rag-infra:kong.cors.origins must not be empty"):
        parse_settings({"environment": "prod"}, stack="prod")


def test_bad_stack_config_fails_before_any_resource_is_registered():
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match=r"rag-infra:qdrant\.nodes must be an odd number >= 1, got 4"):
        run_program("dev", overrides={"qdrant": {"nodes": 4}}, mocks=mocks)
    # Only the root stack exists; not one resource of the program was registered.
    assert [r.typ for r in mocks.resources if r.typ != "pulumi:pulumi:Stack"] == []


def test_secret_keys_set_in_plaintext_are_refused():
    with pytest.raises(SettingsError, match=r"rag-infra:qdrantApiKey must be set as a secret"):
        run_program("dev", overrides={"qdrantApiKey": "in-the-clear"})


def _resolved(schema: dict, prop: dict) -> dict:
    ref = prop.get("$ref")
    return schema["$defs"][ref.rsplit("/", 1)[-1]] if ref else prop


def test_pulumi_yaml_declares_exactly_the_models_keys_types_and_defaults():
    """The config contract has one source: the models. Pulumi.yaml must agree with their schema."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    schema = config_schema()
    properties = schema["properties"]
    assert list(declared) == list(properties)
    for key, spec in declared.items():
        prop = properties[key]
        assert spec["type"] == _resolved(schema, prop)["type"], key
        assert spec["default"] == prop["default"], key
        if spec["type"] == "array":
            assert spec["items"] == prop["items"], key
        assert ("Secret" in spec["description"]) == bool(prop.get("secret")), key


def test_the_schema_knows_every_nested_key_and_its_bounds():
    schema = config_schema()
    qdrant = schema["$defs"]["QdrantSettings"]
    assert qdrant["additionalProperties"] is False
    assert set(qdrant["properties"]) == {
        "nodes", "image", "lbImage", "lbPort", "lbGrpcPort", "lbReplicas", "memoryMb", "collections",
        "backups",
    }  # fmt: skip
    assert qdrant["properties"]["lbPort"]["maximum"] == 65535
    assert schema["properties"]["environment"]["enum"] == ["dev", "prod"]
    # Every stack file of the repository is valid against the models (the program parses it).
    for stack in ("dev", "prod"):
        values, _ = stack_config(stack)
        parse_settings({k.split(":", 1)[1]: v for k, v in values.items()}, stack=stack)


# (values, accepted) on both sides of each bound: the last accepted value and the first refused.
BOUNDARIES = [
    ({"qdrant": {"nodes": 1}}, True),
    ({"qdrant": {"nodes": 0}}, False),
    ({"qdrant": {"nodes": 5}}, True),
    ({"qdrant": {"nodes": 4}}, False),
    ({"qdrant": {"lbReplicas": 1}}, True),
    ({"qdrant": {"lbReplicas": 0}}, False),
    ({"qdrant": {"backups": {"everyHours": 1, "keep": 1}}}, True),
    ({"qdrant": {"backups": {"everyHours": 0}}}, False),
    ({"qdrant": {"backups": {"keep": 0}}}, False),
    ({"qdrant": {"backups": {"everyHours": 168, "keep": 365}}}, True),
    ({"qdrant": {"backups": {"everyHours": 169}}}, False),
    ({"neon": {"controllerBackups": {"everyHours": 1, "keep": 1}}}, True),
    ({"neon": {"controllerBackups": {"everyHours": 0}}}, False),
    ({"neon": {"controllerBackups": {"keep": 0}}}, False),
    ({"neon": {"controllerBackups": {"everyHours": 168, "keep": 365}}}, True),
    ({"neon": {"controllerBackups": {"everyHours": 169}}}, False),
    ({"neon": {"controllerBackups": {"keep": 366}}}, False),
    ({"neon": {"poolerReplicas": 1}}, True),
    ({"neon": {"poolerReplicas": 0}}, False),
    ({"qdrant": {"lbPort": 65535}}, True),
    ({"qdrant": {"lbPort": 65536}}, False),
    ({"qdrant": {"lbPort": 1}}, True),
    ({"qdrant": {"lbPort": 0}}, False),
    ({"qdrant": {"memoryMb": 64}}, True),
    ({"qdrant": {"memoryMb": 63}}, False),
    ({"qdrant": {"image": "qdrant/qdrant:v1.13.3"}}, True),
    ({"qdrant": {"image": "qdrant/qdrant:v1.13.2"}}, False),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 65536}]}}, True),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 65537}]}}, False),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 1}]}}, True),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 0}]}}, False),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 8, "replicationFactor": 3}]}}, True),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 8, "replicationFactor": 4}]}}, False),
    (
        {
            "qdrant": {
                "collections": [
                    {"name": "c", "vectorSize": 8, "replicationFactor": 2, "writeConsistencyFactor": 2}
                ]
            }
        },
        True,
    ),
    ({"qdrant": {"collections": [{"name": "c", "vectorSize": 8, "writeConsistencyFactor": 0}]}}, False),
    ({"qdrant": {"collections": [{"name": "c" * 255, "vectorSize": 8}]}}, True),
    ({"qdrant": {"collections": [{"name": "c" * 256, "vectorSize": 8}]}}, False),
    ({"neon": {"pgVersion": 17}}, True),
    (
        {
            "neon": {
                "pgVersion": 14,
                "computeImage": "ghcr.io/neondatabase/compute-node-v14:release-compute-9073",
            }
        },
        True,
    ),
    ({"neon": {"pgVersion": 13}}, False),
    ({"neon": {"safekeepers": 31}}, True),
    ({"neon": {"safekeepers": 32}}, False),
    ({"neon": {"safekeepers": 1}}, True),
    ({"neon": {"branches": [{"name": "b", "compute": True, "computePort": 65535}]}}, True),
    ({"neon": {"branches": [{"name": "b", "compute": True, "computePort": 65536}]}}, False),
    ({"neon": {"branches": [{"name": "a" * 63}]}}, True),
    ({"neon": {"branches": [{"name": "a" * 64}]}}, False),
    ({"kong": {"rateLimit": {"minute": 100, "hour": 100}}}, True),
    ({"kong": {"rateLimit": {"minute": 100, "hour": 99}}}, False),
    ({"kong": {"rateLimit": {"second": 1}}}, True),
    ({"kong": {"rateLimit": {"second": 0}}}, False),
    ({"kong": {"cors": {"maxAge": 0}}}, True),
    ({"kong": {"cors": {"maxAge": -1}}}, False),
    ({"migration": {"postgres": {"batchRows": 1}}}, True),
    ({"migration": {"postgres": {"batchRows": 0}}}, False),
    ({"migration": {"qdrant": {"batchSize": 1}}}, True),
    ({"migration": {"qdrant": {"batchSize": 0}}}, False),
]


@pytest.mark.parametrize(
    ("values", "accepted"), BOUNDARIES, ids=[f"{i}-{a}" for i, (_, a) in enumerate(BOUNDARIES)]
)
def test_both_sides_of_every_bound(values, accepted):
    if accepted:
        parse_settings(values, stack="dev")
    else:
        with pytest.raises(SettingsError):
            parse_settings(values, stack="dev")


def test_a_port_of_a_tier_that_is_off_is_free():
    settings = parse_settings(
        {"features": {"kongGateway": False}, "neon": {"computePort": 8000}}, stack="dev"
    )
    assert settings.neon.compute_port == 8000


@pytest.mark.parametrize("namespace", ["raginfra", "rag_infra", "RAG-Infra"])
def test_look_alike_namespaces_are_reported(namespace):
    from components.settings import _refuse_look_alike_namespaces

    with pytest.raises(
        SettingsError, match=rf"config key {namespace}:qdrant is not read: did you mean rag-infra:qdrant\?"
    ):
        _refuse_look_alike_namespaces(["rag-infra:environment", f"{namespace}:qdrant"])
    _refuse_look_alike_namespaces(["rag-infra:qdrant", "aws:region"])


@pytest.mark.parametrize("source", ["http//old:6333", "old:6333", "relative/store", "ftp://old"])
def test_the_qdrant_migration_source_is_checked_at_preview(source):
    values = {"migration": {"qdrant": {"enabled": True, "sourceUrl": source, "collections": []}}}
    with pytest.raises(
        SettingsError, match=r"rag-infra:migration.qdrant.sourceUrl must be an http\(s\):// or grpc"
    ):
        parse_settings(values, stack="dev")


@pytest.mark.parametrize("source", ["http://old-qdrant:6333", "grpc://old:6334", "/srv/qdrant/store"])
def test_good_qdrant_migration_sources_pass(source):
    values = {"migration": {"qdrant": {"sourceUrl": source}}}
    assert parse_settings(values, stack="dev").migration.qdrant.source_url == source


def test_a_malformed_timescale_url_is_refused_without_showing_it():
    with pytest.raises(SettingsError) as err:
        run_program(
            "dev",
            overrides={"migration": {"postgres": {"enabled": True}}},
            secret_overrides={"timescaleUrl": "hunter2@timescale:5432"},
        )
    assert "rag-infra:timescaleUrl must be a postgresql:// URL" in str(err.value)
    assert "hunter2" not in str(err.value)
