"""The gate inside `pulumi up`, under mocks: a local command that runs `python -m verify` after
every tier and migration, its inputs secret, re-run when an output changes."""

from __future__ import annotations

import json

from tests.harness import contains_secret_wrapper, unwrap_secrets
from verify.__main__ import main
from verify.gate import ENV

COMMAND = "command:local:Command"


def gates(run) -> list:
    """The gate's command (the swarm's bootstrap commands are local commands too)."""
    return [c for c in run.of_type(COMMAND) if c.name == "verification-checks"]


def test_the_gate_runs_the_checks_after_every_tier_with_secret_inputs(program):
    run = program(
        "dev",
        overrides={"migration": {"postgres": {"enabled": True}}, "verify": {"p95Ms": 25}},
        secret_overrides={"timescaleUrl": "postgresql://old:pw@timescale:5432/rag"},
    )
    (gate,) = gates(run)
    create = gate.inputs["create"]
    assert "-m verify --stack dev --outputs-env --json --p95-ms 25 --runs 20" in create
    # Secret on the wire (the engine then keeps them encrypted in the state).
    assert contains_secret_wrapper(gate.inputs["environment"]) and contains_secret_wrapper(
        gate.inputs["triggers"]
    )
    environment = unwrap_secrets(gate.inputs["environment"])
    # Everything but the certificate, which a plaintext stack has not.
    assert set(environment) == set(ENV.values()) - {"RAG_VERIFY_TLS_CERTIFICATE"}
    assert environment["RAG_VERIFY_QDRANT_URL"] == run.outputs["qdrantUrl"]
    assert environment["RAG_VERIFY_KONG_JWT_CREDENTIALS"] == run.outputs["kongJwtCredentials"]
    assert gate.inputs["logging"] == "stderr"
    # The admin API the checks reach goes through the operator-access forwarder.
    assert run.depends_on["verification"] == {
        "neon",
        "qdrant",
        "kong",
        "operator-access",
        "postgres-migration",
    }
    assert json.loads(run.outputs["verification"]) == {"ok": True, "checks": []}
    # Nothing secret travels on the command line.
    assert "generated-" not in create and "postgresql://" not in create


def test_the_gate_can_be_switched_off(program):
    run = program("dev", overrides={"verify": {"enabled": False}})
    assert gates(run) == [] and "verification" not in run.outputs


def test_a_stack_without_tiers_has_nothing_to_check(program):
    features = {"neon": False, "qdrantCluster": False, "kongGateway": False}
    assert gates(program("dev", overrides={"features": features})) == []


def test_the_command_reads_the_outputs_from_the_gates_environment(monkeypatch, capsys):
    for variable in ENV.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(ENV["neonDatabaseUrl"], "postgresql://rag:x@127.0.0.1:9/rag")
    assert main(["--stack", "dev", "--outputs-env", "--json", "--runs", "2"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["checks"]] == ["neon.connect"] and not report["ok"]


def test_with_tls_the_gate_hands_the_checks_the_certificate_to_trust(program):
    run = program("prod")
    (gate,) = gates(run)
    environment = unwrap_secrets(gate.inputs["environment"])
    assert environment["RAG_VERIFY_TLS_CERTIFICATE"] == run.outputs["tlsCertificate"]
    assert environment["RAG_VERIFY_QDRANT_URL"].startswith("https://")
