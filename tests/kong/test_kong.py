"""KongGateway under mocks (both modes, both stacks) and its rendered config against Kong's rules."""

from __future__ import annotations

import base64
import json
import re
import time

import jwt
import pytest
import yaml

from components.kong.config import render_kong_config, segment_path
from components.kong.token import issue_token, main
from components.settings import SettingsError, parse_settings
from tests.harness import contains_secret_wrapper, unwrap_secrets
from tests.support.kong_jwt import kong_jwt_verdict

STACKS = ["dev", "prod"]
MODES = ["off", "postgres"]
# Kong 3.9 schema rules (facts/kong-nginx.md §2.2, §3).
UTF8_NAME = re.compile(r"^[A-Za-z0-9._~-]+$")
METHODS = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
JWT_FIELDS = {
    "uri_param_names",
    "cookie_names",
    "header_names",
    "key_claim_name",
    "secret_is_base64",
    "claims_to_verify",
    "anonymous",
    "run_on_preflight",
    "maximum_expiration",
    "realm",
}
RATE_LIMIT_FIELDS = {
    "second",
    "minute",
    "hour",
    "day",
    "month",
    "year",
    "limit_by",
    "header_name",
    "path",
    "policy",
    "fault_tolerant",
    "hide_client_headers",
    "error_code",
    "error_message",
    "sync_rate",
    "redis",
}
# kong/plugins/prometheus/schema.lua (3.9): every flag a boolean, false by default.
PROMETHEUS_FIELDS = {
    "per_consumer",
    "status_code_metrics",
    "ai_metrics",
    "latency_metrics",
    "bandwidth_metrics",
    "upstream_health_metrics",
}
CORS_FIELDS = {
    "origins",
    "methods",
    "headers",
    "exposed_headers",
    "credentials",
    "max_age",
    "preflight_continue",
    "private_network",
}
JWT_ALGORITHMS = {
    "HS256",
    "HS384",
    "HS512",
    "RS256",
    "RS384",
    "RS512",
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
}


def kong_container(run, stack):
    return run.workload(f"rag-infra-{stack}-kong")


def declarative(run, stack) -> dict:
    content, secret = run.service_files(run.service(f"rag-infra-{stack}-kong"))["/run/secrets/kong.yml"]
    assert secret, "kong.yml carries the JWT secret: a Swarm secret"
    return yaml.safe_load(content)


def envs(container) -> dict:
    return dict(e.split("=", 1) for e in unwrap_secrets(container.inputs["envs"]))


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("mode", MODES)
def test_only_the_proxy_is_published_and_operator_ports_reach_loopback_through_the_forwarder(
    program, stack, mode
):
    run = program(stack, overrides={"kong": {**program_kong(stack), "database": mode}})
    kong = run.service(f"rag-infra-{stack}-kong")
    ports = kong.plain("endpointSpec")["ports"]
    # Swarm cannot bind loopback: the service publishes the proxy alone, in host mode.
    # Prod publishes Kong's TLS proxy listener (8443) on the proxy port.
    proxy = 8443 if stack == "prod" else 8000
    assert [(p["targetPort"], p["publishedPort"], p["publishMode"]) for p in ports] == [(proxy, 8000, "host")]
    forwarder = run.workload(f"rag-infra-{stack}-operator-access")
    kong_ports = {(p["internal"], p["external"], p["ip"]) for p in forwarder.inputs["ports"]} & {
        (port, port, "127.0.0.1") for port in (8001, 8002, 8100, 8444)
    }
    assert kong_ports == {(8001, 8001, "127.0.0.1"), (8100, 8100, "127.0.0.1")}
    conf = forwarder.inputs["uploads"][0]["content"]
    assert "set $target kong:8001;" in conf and "set $target kong:8100;" in conf
    assert run.provider_host(forwarder) == run.named("docker-host-0").inputs["host"]
    for container in run.workloads:
        for port in container.inputs.get("ports", []):
            if port["external"] in (8001, 8002, 8100, 8444):
                assert port.get("ip") == "127.0.0.1", container.name
    spec = kong.plain("taskSpec")["containerSpec"]
    assert spec["healthcheck"]["tests"] == ["CMD", "kong", "health"]
    assert kong.plain("taskSpec")["restartPolicy"]["condition"] == "any"
    assert kong.plain("mode") == {"replicated": {"replicas": 3 if stack == "prod" else 1}}
    assert run.outputs["kongAdminUrl"] == "http://127.0.0.1:8001"
    assert run.outputs["kongProxyUrl"].endswith(":8000")
    assert len(run.outputs["kongProxyUrls"]) == (3 if stack == "prod" else 1)
    assert envs(kong_container(run, stack))["KONG_ADMIN_GUI_LISTEN"] == "off"


def program_kong(stack):
    from tests.harness import stack_config

    values, _ = stack_config(stack)
    return values["rag-infra:kong"]


@pytest.mark.parametrize("stack", STACKS)
def test_dbless_mode_loads_the_rendered_file(program, stack):
    run = program(stack)
    kong = kong_container(run, stack)
    env = envs(kong)
    assert env["KONG_DATABASE"] == "off" and env["KONG_DECLARATIVE_CONFIG"] == "/run/secrets/kong.yml"
    # The repository at the digest the manager pulled (the Docker provider's repo_digest).
    assert kong.inputs["image"] == f"kong@sha256:{'0' * 64}"
    assert run.named("kong-image").inputs["name"] == "kong:3.9.3"
    assert not [c for c in run.workloads if "kong-db" in c.inputs["name"]]
    assert declarative(run, stack)["_format_version"] == "3.0"


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_mode_has_db_migrations_and_import(program, stack):
    run = program(stack, overrides={"kong": {**program_kong(stack), "database": "postgres"}})
    db = run.service(f"rag-infra-{stack}-kong-db")
    migrations = next(c for c in run.resources if c.name == "kong-migrations-run")
    kong = run.service(f"rag-infra-{stack}-kong")
    db_spec = db.plain("taskSpec")["containerSpec"]
    assert db_spec["mounts"][0]["target"] == "/var/lib/postgresql/data"
    assert db_spec["healthcheck"]["tests"][:2] == ["CMD", "pg_isready"]
    assert db.plain("taskSpec")["placement"]["constraints"] == ["node.labels.rag-infra.host.0==true"]
    # A job whose exit code fails `pulumi up` (components/platform/jobs.py), run on the first host.
    script = migrations.inputs["create"]
    assert "--network rag-infra-" in script and "--env-file /dev/stdin" in script
    assert "kong migrations bootstrap && kong migrations up && kong migrations finish" in script
    assert "kong config db_import /usr/local/kong/declarative.yml" in script
    # The database password and the rendered file (the JWT secret) travel only on stdin, secret.
    stdin = migrations.inputs["stdin"]
    assert contains_secret_wrapper(stdin) and "KONG_PG_PASSWORD=" in unwrap_secrets(stdin)
    encoded = next(
        line for line in unwrap_secrets(stdin).splitlines() if line.startswith("KONG_DECLARATIVE_B64=")
    )
    assert yaml.safe_load(base64.b64decode(encoded.split("=", 1)[1]))["_format_version"] == "3.0"
    assert "generated-" not in script
    env = kong.plain("taskSpec")["containerSpec"]["env"]
    assert env["KONG_DATABASE"] == "postgres" and env["KONG_PG_HOST"] == "kong-db"
    assert "KONG_DECLARATIVE_CONFIG" not in env
    # The password: a Swarm secret file for both, the same value, never in an environment.
    assert env["KONG_PG_PASSWORD_FILE"] == "/run/secrets/kong-pg-password" and "KONG_PG_PASSWORD" not in env
    assert db_spec["env"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    kong_password = run.service_files(kong)["/run/secrets/kong-pg-password"]
    assert kong_password == run.service_files(db)["/run/secrets/postgres-password"] and kong_password[1]
    assert f"KONG_PG_PASSWORD={kong_password[0]}" in unwrap_secrets(stdin)
    # kong-db -> migrations (bootstrap, up, finish, import) -> Kong
    assert run.depends_on["kong-migrations"] == {"kong-db"}
    assert run.depends_on["kong-kong-service"] == {"docker-swarm-labels", "kong-migrations"}


def test_manager_is_offered_on_loopback_behind_a_flag(program):
    run = program("dev", overrides={"kong": {"manager": True, "cors": {"origins": ["*"]}}})
    forwarder = run.workload("rag-infra-dev-operator-access")
    manager = next(p for p in forwarder.inputs["ports"] if p["external"] == 8002)
    assert manager["ip"] == "127.0.0.1"
    assert envs(kong_container(run, "dev"))["KONG_ADMIN_GUI_LISTEN"] == "0.0.0.0:8002"


def test_kong_replicas_from_config_override_one_per_host(program):
    run = program("prod", overrides={"kong": {**program_kong("prod"), "replicas": 2}})
    kong = run.service("rag-infra-prod-kong")
    assert kong.plain("mode") == {"replicated": {"replicas": 2}}
    assert kong.plain("taskSpec")["placement"]["maxReplicas"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_config_follows_kongs_schema(program, stack):
    config = declarative(program(stack), stack)
    assert set(config) == {"_format_version", "_transform", "services", "plugins", "consumers"}
    routes = [route for service in config["services"] for route in service["routes"]]
    assert {r["name"] for r in routes} == {"rag-search", "rag-query"}
    for service in config["services"]:
        assert UTF8_NAME.match(service["name"]) and service["url"].startswith("http")
    for route in routes:
        assert UTF8_NAME.match(route["name"])
        assert route["methods"] and all(m in METHODS and m.isupper() for m in route["methods"])
        for path in route["paths"]:
            assert path.startswith(("/", "~/")) and "//" not in path
            if path.startswith("~"):
                re.compile(path[1:])
        names = [p["name"] for p in route["plugins"]]
        assert names == ["jwt", "rate-limiting"]
        jwt_conf = route["plugins"][0]["config"]
        assert set(jwt_conf) <= JWT_FIELDS and jwt_conf["claims_to_verify"] == ["exp"]
        assert jwt_conf["header_names"] == ["authorization"] and isinstance(
            jwt_conf["secret_is_base64"], bool
        )
        rl = route["plugins"][1]["config"]
        assert set(rl) <= RATE_LIMIT_FIELDS and rl["policy"] in {"local", "redis"}
        assert any(isinstance(rl.get(p), int) and rl[p] > 0 for p in ("second", "minute", "hour", "day"))
        assert rl["limit_by"] in {"consumer", "credential", "ip", "service", "header", "path"}
    cors, prometheus = config["plugins"]
    assert cors["name"] == "cors" and set(cors["config"]) <= CORS_FIELDS
    # The alert rules read the status codes and the latency histogram, both off by default.
    assert prometheus["name"] == "prometheus" and set(prometheus["config"]) <= PROMETHEUS_FIELDS
    assert prometheus["config"]["status_code_metrics"] is True
    assert prometheus["config"]["latency_metrics"] is True
    assert all(m in METHODS for m in cors["config"]["methods"])
    assert isinstance(cors["config"]["credentials"], bool) and isinstance(cors["config"]["max_age"], int)
    if stack == "prod":
        assert "*" not in cors["config"]["origins"]
    for consumer in config["consumers"]:
        (secret,) = consumer["jwt_secrets"]
        assert secret["algorithm"] in JWT_ALGORITHMS and secret["key"] and secret["secret"]


def test_paths_match_whole_segments_only():
    pattern = segment_path("/rag-search")
    assert pattern == "~/rag-search(/|$)"
    regex = re.compile("^" + pattern[1:])
    assert regex.match("/rag-search") and regex.match("/rag-search/v1/q")
    assert not regex.match("/rag-searchX")


def test_exempt_route_has_no_jwt():
    settings = parse_settings(
        {
            "kong": {
                "routes": [
                    {
                        "name": "health",
                        "paths": ["/health"],
                        "upstreamUrl": "http://a:1",
                        "exemptFrom": ["jwt"],
                    }
                ]
            }
        },
        stack="dev",
    ).kong
    config = yaml.safe_load(
        render_kong_config(settings.routes, settings.rate_limit, settings.cors, settings.consumers, "s")
    )
    assert [p["name"] for p in config["services"][0]["routes"][0]["plugins"]] == ["rate-limiting"]


def test_redis_policy_uses_the_nested_record():
    settings = parse_settings(
        {"kong": {"rateLimit": {"minute": 10, "policy": "redis", "redis": {"host": "redis"}}}}, stack="dev"
    ).kong
    config = yaml.safe_load(
        render_kong_config(settings.routes, settings.rate_limit, settings.cors, settings.consumers, "s")
    )
    rl = config["services"][0]["routes"][0]["plugins"][1]["config"]
    assert rl["redis"] == {"host": "redis", "port": 6379, "database": 0, "timeout": 2000}
    assert not any(key.startswith("redis_") for key in rl)


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"methods": ["get"]}, "methods[0] must be an uppercase HTTP method"),
        ({"name": "rag search"}, "name must be letters, digits"),
        ({"paths": ["rag-search"]}, "paths[0] must be a plain path starting with /"),
        ({"retries": 3}, "has unknown key(s) retries"),
    ],
)
def test_bad_routes_fail_before_any_resource(program, route, message):
    from tests.harness import RecordingMocks, run_program

    mocks = RecordingMocks()
    bad = {"name": "rag-search", "paths": ["/rag-search"], "upstreamUrl": "http://docs:3401", **route}
    with pytest.raises(SettingsError, match=re.escape(message)):
        run_program("dev", overrides={"kong": {"routes": [bad]}}, mocks=mocks)
    assert [r for r in mocks.resources if r.typ != "pulumi:pulumi:Stack"] == []


def test_bad_cors_option_is_rejected():
    with pytest.raises(SettingsError, match=r"rag-infra:kong.cors has unknown key\(s\) allowOriginAbsent"):
        parse_settings({"kong": {"cors": {"origins": ["*"], "allowOriginAbsent": True}}}, stack="dev")


@pytest.mark.parametrize("stack", STACKS)
def test_no_plaintext_secret_in_any_input(program, stack):
    run = program(stack)
    secret = run.outputs["kongJwtCredentials"]
    jwt_secret = json.loads(secret)["consumers"][0]["secret"]
    assert "kongJwtCredentials" in run.secret_outputs
    for resource in run.resources:
        for key, value in resource.inputs.items():
            if not contains_secret_wrapper(value):
                assert jwt_secret not in json.dumps(value), f"{resource.name}.{key} leaks the JWT secret"


def test_token_command_issues_a_jwt_kong_accepts(program, tmp_path, capsys):
    run = program("dev")
    credentials = tmp_path / "credentials.json"
    # What `pulumi stack output kongJwtCredentials --show-secrets --json` prints: a JSON string.
    credentials.write_text(json.dumps(run.outputs["kongJwtCredentials"]))
    assert main(["--consumer", "rag-client", "--credentials", str(credentials), "--ttl", "600"]) == 0
    token = capsys.readouterr().out.strip()
    entry = json.loads(run.outputs["kongJwtCredentials"])["consumers"][0]
    claims = jwt.decode(token, entry["secret"], algorithms=["HS256"], options={"require": ["exp", "iss"]})
    assert claims["iss"] == entry["key"] == "rag-client-issuer"
    assert 590 <= claims["exp"] - time.time() <= 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret", algorithms=["HS256"])


def test_token_command_names_an_unknown_consumer(tmp_path, capsys):
    credentials = tmp_path / "c.json"
    credentials.write_text(json.dumps({"consumers": [{"username": "a", "key": "k", "secret": "s"}]}))
    assert main(["--consumer", "nobody", "--credentials", str(credentials)]) == 1
    assert "no Kong consumer 'nobody'" in capsys.readouterr().err


def test_expired_token_is_rejected_by_a_verifier():
    token = issue_token({"consumers": [{"username": "a", "key": "k", "secret": "s"}]}, "a", 60, now=1000)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, "s", algorithms=["HS256"])


def _rendered_kong_yml(run) -> str:
    return run.service_files(run.service("rag-infra-dev-kong"))["/run/secrets/kong.yml"][0]


def test_tokens_from_the_token_command_pass_the_rendered_kong_config(program, tmp_path, capsys):
    """The token command and the rendered jwt plugin must agree (claim name, algorithm, secret):
    a disagreement rejects every request, a total outage."""
    run = program("dev")
    kong_yml = _rendered_kong_yml(run)
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps(run.outputs["kongJwtCredentials"]))
    assert main(["--consumer", "rag-client", "--credentials", str(credentials), "--ttl", "600"]) == 0
    token = capsys.readouterr().out.strip()
    for route in ("rag-search", "rag-query"):
        assert kong_jwt_verdict(kong_yml, route, f"Bearer {token}") == (200, "ok")
    assert kong_jwt_verdict(kong_yml, "rag-search", None) == (401, "Unauthorized")
    assert kong_jwt_verdict(kong_yml, "rag-search", f"Bearer {token}", now=time.time() + 601)[0] == 401
    forged = jwt.encode(jwt.decode(token, options={"verify_signature": False}), "guess", algorithm="HS256")
    assert kong_jwt_verdict(kong_yml, "rag-search", f"Bearer {forged}") == (401, "Invalid signature")
    unsigned = jwt.encode(jwt.decode(token, options={"verify_signature": False}), None, algorithm="none")
    assert kong_jwt_verdict(kong_yml, "rag-search", f"Bearer {unsigned}") == (401, "Invalid algorithm")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"consumers": [{"username": "a", "secret": "s"}]}', "consumers[0] has no key; expected"),
        ('{"consumers": [{"username": "a", "key": "k"}]}', "consumers[0] has no secret; expected"),
        (
            '[{"username": "a", "key": "k", "secret": "s"}]',
            "the credentials are not the kongJwtCredentials output",
        ),
        ('{"consumers": [', "is not JSON (Expecting value at line 1); expected"),
    ],
)
def test_malformed_credentials_are_one_clear_line(tmp_path, capsys, content, expected):
    credentials = tmp_path / "c.json"
    credentials.write_text(content)
    assert main(["--credentials", str(credentials)]) == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and error.startswith("kong.token: ") and expected in error


@pytest.mark.parametrize(("ttl", "ok"), [(604800, True), (604801, False), (1, True), (0, False)])
def test_the_ttl_has_a_ceiling_of_a_week(tmp_path, capsys, ttl, ok):
    credentials = tmp_path / "c.json"
    credentials.write_text(
        json.dumps({"consumers": [{"username": "rag-client", "key": "k", "secret": "s" * 32}]})
    )
    assert main(["--credentials", str(credentials), "--ttl", str(ttl)]) == (0 if ok else 1)
    if not ok:
        assert "--ttl must be between 1 and 604800 seconds" in capsys.readouterr().err
