"""TLS on the public listeners: the settings, the certificate (configured or generated), what
each public service runs with under mocks, the URLs and the trust the program's clients get."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest
import requests

from components.platform.tls import ca_bundle_file, split_names
from components.qdrant.collection import QdrantRest
from components.settings import SettingsError, parse_settings
from tests.harness import unwrap_secrets
from tests.support.certificates import self_signed, tls_listener

PROD = {"environment": "prod", "kong": {"cors": {"origins": ["https://a.example"]}}}
GENERATED = "-----BEGIN CERTIFICATE-----\ntls-certificate\n-----END CERTIFICATE-----\n"
"""The mocks' answer for the generated certificate (policies/program.py)."""


def test_prod_serves_tls_by_default_and_dev_may_stay_plaintext():
    assert parse_settings(PROD, stack="p").tls.enabled
    assert not parse_settings({}, stack="dev").tls.enabled
    assert not parse_settings({**PROD, "tls": {"enabled": False}}, stack="p").tls.enabled


def test_half_a_configured_pair_is_refused_naming_the_missing_key():
    from components.settings import Secrets

    with pytest.raises(
        SettingsError, match=r"rag-infra:tlsPrivateKey \(secret\) is required with tlsCertificate"
    ):
        parse_settings(PROD, stack="p", secrets=Secrets(tls_certificate="x"))


def test_the_certificate_names_every_host_clients_reach():
    assert split_names(["docker-1.example", "10.0.0.7", "docker-1.example", "localhost"]) == (
        ["docker-1.example", "localhost"],
        ["10.0.0.7", "127.0.0.1"],
    )


def test_the_ca_bundle_adds_the_stack_certificate_to_the_systems(tmp_path):
    assert ca_bundle_file(None) is True
    pair = self_signed(tmp_path)
    path = ca_bundle_file(pair.certificate_pem)
    text = Path(path).read_text()
    assert text.endswith(pair.certificate_pem) and text.count("BEGIN CERTIFICATE") > 10
    assert ca_bundle_file(pair.certificate_pem) == path


def test_the_bundle_lets_requests_check_a_self_signed_listener(tmp_path, nginx):
    url, pem = tls_listener(tmp_path, nginx)
    assert requests.get(f"{url}/", verify=ca_bundle_file(pem), timeout=5).ok
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/", timeout=5)


def test_the_programs_qdrant_client_trusts_the_certificate_whatever_the_environment_says(
    tmp_path, nginx, monkeypatch
):
    """REQUESTS_CA_BUNDLE (set on many machines, this one included) overrides a session's own
    `verify` in requests: the client passes its bundle with every request. Found on the e2e
    engine, where the member gates failed with the stack's certificate unverified."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    url, pem = tls_listener(tmp_path, nginx)
    assert QdrantRest(url, "key", ca_certificate=pem).call("GET", "/cluster")[0] == 200
    with pytest.raises(requests.exceptions.SSLError):
        QdrantRest(url, "key").call("GET", "/cluster")


# -- the program under mocks ----------------------------------------------------------------


def published(service) -> set[tuple[int, int]]:
    return {(p["targetPort"], p["publishedPort"]) for p in service.plain("endpointSpec")["ports"]}


def test_prod_publishes_only_tls_listeners_with_one_generated_certificate(program):
    run = program("prod")
    (key,) = run.of_type("tls:index/privateKey:PrivateKey")
    (cert,) = run.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert cert.inputs["dnsNames"] == [
        "docker-1.example.internal",
        "docker-2.example.internal",
        "docker-3.example.internal",
    ]
    assert key.inputs["algorithm"] == "ECDSA"
    lb = run.service("rag-infra-prod-qdrant-lb")
    assert {(p["targetPort"], p["publishedPort"]) for p in lb.plain("endpointSpec")["ports"]} == {
        (6443, 6333),
        (6444, 6334),
    }
    files = run.service_files(lb)
    assert files["/etc/nginx/tls/certificate.pem"] == (GENERATED, False)
    assert files["/run/secrets/qdrant-lb-tls-key.pem"][1] is True  # the key: a Swarm secret
    kong = run.service("rag-infra-prod-kong")
    env = kong.plain("taskSpec")["containerSpec"]["env"]
    assert env["KONG_PROXY_LISTEN"] == "0.0.0.0:8000, 0.0.0.0:8443 ssl"
    assert (env["KONG_SSL_CERT"], env["KONG_SSL_CERT_KEY_FILE"]) == (
        "/etc/kong/tls/certificate.pem",
        "/run/secrets/kong-tls-key.pem",
    )
    assert [(p["targetPort"], p["publishedPort"]) for p in kong.plain("endpointSpec")["ports"]] == [
        (8443, 8000)
    ]
    assert run.service_files(kong)["/run/secrets/kong-tls-key.pem"][1] is True
    pooler = run.service("rag-infra-prod-neon-pooler")
    ini = run.service_files(pooler)["/var/db/postgres/pgbouncer/pgbouncer.ini"][0]
    assert "client_tls_sslmode = require" in ini
    assert "client_tls_ca_file = /var/db/postgres/pgbouncer/tls/certificate.pem" in ini
    assert run.service_files(pooler)["/run/secrets/pooler-tls-key.pem"][1] is True


def test_prod_urls_are_https_and_the_programs_clients_trust_the_certificate(program):
    run = program("prod")
    outputs = unwrap_secrets(run.outputs)
    assert outputs["qdrantUrl"] == "https://docker-1.example.internal:6333"
    assert outputs["qdrantGrpcUrl"] == "https://docker-1.example.internal:6334"
    assert all(u.startswith("https://") for u in outputs["kongProxyUrls"] + outputs["qdrantUrls"])
    assert outputs["neonPooledUrl"].endswith("/rag?sslmode=require")
    assert outputs["tlsCertificate"] == GENERATED and "tlsCertificate" not in run.secret_outputs
    # Inside the stack the plaintext ports stay.
    assert "QDRANT_CLUSTER_URL=http://qdrant-lb:6333" in outputs["appEnv"]
    # The collections and the member gates reach the LB's https URL, checking its certificate.
    clients = [r for r in run.resources if r.typ.startswith("pulumi-python:dynamic/qdrant:")]
    assert {r.typ.rsplit(":", 1)[1] for r in clients} == {"Collection", "MemberReady"}
    assert all(r.inputs["ca_certificate"] == GENERATED for r in clients)


def test_a_configured_pair_replaces_the_generated_one(program):
    run = program("prod", secret_overrides={"tlsCertificate": "CERT-PEM", "tlsPrivateKey": "KEY-PEM"})
    assert not run.of_type("tls:index/selfSignedCert:SelfSignedCert")
    lb = run.service("rag-infra-prod-qdrant-lb")
    files = run.service_files(lb)
    assert files["/etc/nginx/tls/certificate.pem"] == ("CERT-PEM", False)
    assert files["/run/secrets/qdrant-lb-tls-key.pem"] == ("KEY-PEM", True)
    assert unwrap_secrets(run.outputs)["tlsCertificate"] == "CERT-PEM"


def test_dev_stays_plaintext_with_its_inputs_unchanged(program):
    run = program("dev")
    assert not run.of_type("tls:index/selfSignedCert:SelfSignedCert")
    outputs = unwrap_secrets(run.outputs)
    assert outputs["qdrantUrl"].startswith("http://") and "tlsCertificate" not in outputs
    assert not [r.name for r in run.resources if "ca_certificate" in r.inputs]
    lb = run.service("rag-infra-dev-qdrant-lb")
    assert published(lb) == {(6333, 6333), (6334, 6334)}


def test_the_qdrant_migration_trusts_the_certificate_of_the_https_target(program):
    migration = {
        "qdrant": {"enabled": True, "sourceUrl": "http://old:6333", "collections": ["docs_index_mxbai"]}
    }
    run = program("prod", overrides={"migration": migration})
    (copy,) = run.of_type("pulumi-python:dynamic/migration:Qdrant")
    assert copy.inputs["target_url"].startswith("https://")
    assert copy.inputs["target_ca_certificate"] == GENERATED
