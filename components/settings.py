"""The whole `rag-infra:` configuration: the tier models composed, parsed and validated once.

`parse_settings` is a pure function from the raw config values to frozen models, so it can be
tested without Pulumi; `load_settings` reads the values from the running Pulumi program.
Every error names the key, the value that was given and what is allowed, and it is raised
before any resource is registered. `config_schema()` is the JSON Schema of the stack
configuration (`python -m components.settings` prints it); a test holds Pulumi.yaml to it.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self
from urllib.parse import urlsplit

import pulumi
from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.kong.settings import KongSettings
from components.monitoring.settings import MonitoringSettings
from components.neon.config import CONTROLLER_PORT, PAGESERVER_HTTP_PORT
from components.neon.settings import NeonSettings
from components.platform.settings import (
    FLAG,
    PROJECT,
    ConfigModel,
    SettingsError,
    config_key,
    fail,
    is_prod,
    items,
    settings_error,
    text,
    unique,
)
from components.qdrant.settings import QdrantSettings
from migration.settings import MigrationSettings
from verify.settings import VerifySettings


@dataclass(frozen=True)
class Secrets:
    """Secret config values; `None` where the stack did not set one (it is then generated)."""

    timescale_url: pulumi.Output[str] | None = None
    old_qdrant_api_key: pulumi.Output[str] | None = None
    qdrant_api_key: pulumi.Output[str] | None = None
    neon_password: pulumi.Output[str] | None = None
    kong_jwt_secret: pulumi.Output[str] | None = None
    tls_certificate: pulumi.Output[str] | None = None
    tls_private_key: pulumi.Output[str] | None = None
    alert_webhook_url: pulumi.Output[str] | None = None


SECRET_KEYS = tuple(to_camel(field.name) for field in fields(Secrets))
_SECRET = Field(default="", json_schema_extra={"secret": True})


class Features(ConfigModel):
    """The seed's feature flags: a tier that is off is not deployed and its app flag reads false."""

    neon: FLAG = True
    qdrant_cluster: FLAG = True
    kong_gateway: FLAG = True
    monitoring: FLAG = True
    """Prometheus, Alertmanager and Grafana (not an application tier: no appEnv flag)."""


class TlsSettings(ConfigModel):
    """TLS on the public listeners (Kong's proxy, the Qdrant LB's REST and gRPC ports, the
    pooler): on by default in prod. The certificate and key are the secrets `tlsCertificate` and
    `tlsPrivateKey`, or a self-signed pair when neither is set (components/platform/tls.py)."""

    enabled: FLAG = False

    @model_validator(mode="before")
    @classmethod
    def _on_in_prod(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and is_prod(info):
            return {"enabled": True, **data}
        return data


class StackSettings(ConfigModel):
    """Every `rag-infra:` key of a stack file (as Pulumi.yaml declares them), validated, plus
    where the program runs and its secrets (`project`, `stack`, `secrets`, set by parse_settings).

    The secret keys are fields for the schema only (a string, "" = generate one): the program
    reads them from `secrets`, as secret Outputs, never as plain values.
    """

    environment: text(choices=("dev", "prod")) = "dev"
    docker_hosts: items(
        text(r"(unix|ssh|tcp|npipe)://\S+", "a unix://, ssh:// or tcp:// Docker host URL"), non_empty=True
    ) = ("unix:///var/run/docker.sock",)
    features: Features = {}
    qdrant: QdrantSettings = {}
    neon: NeonSettings = {}
    kong: KongSettings = {}
    migration: MigrationSettings = {}
    tls: TlsSettings = {}
    monitoring: MonitoringSettings = {}
    verify: VerifySettings = {}
    timescale_url: str = _SECRET
    old_qdrant_api_key: str = _SECRET
    qdrant_api_key: str = _SECRET
    neon_password: str = _SECRET
    kong_jwt_secret: str = _SECRET
    tls_certificate: str = _SECRET
    tls_private_key: str = _SECRET
    alert_webhook_url: str = _SECRET

    @model_validator(mode="before")
    @classmethod
    def _an_object_of_known_keys(cls, data: Any) -> Any:
        allowed = [field.alias for field in cls.model_fields.values()]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            fail(
                f"unknown config key(s) {', '.join(map(config_key, unknown))}; allowed: {', '.join(allowed)}"
            )
        return data

    @field_validator("docker_hosts", mode="before")
    @classmethod
    def _some_hosts(cls, hosts: Any) -> Any:
        if not isinstance(hosts, list | tuple) or not hosts:
            fail(f"must be a non-empty list of Docker host URLs, got {hosts!r}")
        return hosts

    @model_validator(mode="after")
    def _host_ports_unique_across_tiers(self) -> Self:
        """Every tier publishes on the same hosts: two listeners on one port never both start."""
        ports: dict[str, int] = {}
        if self.features.qdrant_cluster:
            ports |= {"qdrant.lbPort": self.qdrant.lb_port, "qdrant.lbGrpcPort": self.qdrant.lb_grpc_port}
        if self.features.neon:
            neon = self.neon
            ports |= {"neon.computePort": neon.compute_port, "neon.pageserverPgPort": neon.pageserver_pg_port}
            ports |= {"neon.poolerPort": neon.pooler_port}
            for i in range(neon.safekeepers):
                ports[f"neon.safekeeperHttpPort (+{i}, safekeeper {i})"] = neon.safekeeper_http_port + i
            for i, branch in enumerate(neon.branches):
                if branch.compute_port:
                    ports[f"neon.branches[{i}].computePort"] = branch.compute_port
            ports |= {"the storage controller (fixed)": CONTROLLER_PORT}
            ports |= {"the pageserver's HTTP API (fixed)": PAGESERVER_HTTP_PORT}
        if self.features.kong_gateway:
            kong = self.kong
            ports |= {"kong.proxyPort": kong.proxy_port, "kong.adminPort": kong.admin_port}
            ports |= {"kong.statusPort": kong.status_port}
            if kong.manager:
                ports["kong.managerPort"] = kong.manager_port
        if self.features.monitoring:
            monitoring = self.monitoring
            ports |= {"monitoring.prometheusPort": monitoring.prometheus_port}
            ports |= {"monitoring.alertmanagerPort": monitoring.alertmanager_port}
            ports |= {"monitoring.grafanaPort": monitoring.grafana_port}
        owners: dict[int, str] = {}
        for owner, port in ports.items():
            if port in owners:
                first, second = (o if o.startswith("the ") else config_key(o) for o in (owners[port], owner))
                fail(f"{first} and {second} both use host port {port}")
            owners[port] = owner
        return self

    @model_validator(mode="after")
    def _migrations_have_what_they_need(self, info: ValidationInfo) -> Self:
        unique(self.docker_hosts, "dockerHosts")
        if self.migration.postgres.enabled:
            if not self.features.neon:
                fail("needs the Neon tier (features.neon: true)", "migration.postgres.enabled")
            if "timescaleUrl" not in (info.context or {}).get("secrets", ()):
                fail("(secret) is required when migration.postgres.enabled is true", "timescaleUrl")
        tls_secrets = {"tlsCertificate", "tlsPrivateKey"} & set((info.context or {}).get("secrets", ()))
        if len(tls_secrets) == 1:
            # Half a pair would be silently replaced by a self-signed one.
            (given,) = tls_secrets
            missing = ({"tlsCertificate", "tlsPrivateKey"} - tls_secrets).pop()
            fail(f"(secret) is required with {given}: set both, or neither for a self-signed pair", missing)
        if self.migration.qdrant.enabled and not self.features.qdrant_cluster:
            fail("needs the Qdrant cluster (features.qdrantCluster: true)", "migration.qdrant.enabled")
        declared = {c.name for c in self.qdrant.collections}
        for index, name in enumerate(self.migration.qdrant.collections):
            if name not in declared:
                # The target is created by QdrantCollection with its HA parameters, never by the copy.
                fail(
                    f"must also be listed in qdrant.collections (its HA parameters), got {name!r}",
                    f"migration.qdrant.collections[{index}]",
                )
        return self

    _project: str = PrivateAttr(PROJECT)
    _stack: str = PrivateAttr("")
    _secrets: Secrets = PrivateAttr(default_factory=Secrets)

    @property
    def project(self) -> str:
        return self._project

    @property
    def stack(self) -> str:
        return self._stack

    @property
    def secrets(self) -> Secrets:
        return self._secrets

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def prefix(self) -> str:
        """Prefix of every Docker object name, so two stacks can share one Docker host."""
        return f"{self.project}-{self.stack}"


TOP_LEVEL_KEYS = tuple(field.alias for field in StackSettings.model_fields.values())


def parse_settings(
    values: Mapping[str, Any],
    *,
    stack: str,
    secrets: Secrets | None = None,
    project: str = PROJECT,
) -> StackSettings:
    """Parse raw config values (`{"qdrant": {...}, ...}`, keys without the project prefix)."""
    secrets = secrets or Secrets()
    present = {to_camel(field.name) for field in fields(secrets) if getattr(secrets, field.name) is not None}
    context = {"environment": values.get("environment", "dev"), "secrets": present}
    # An absent structured key (None) takes its defaults, as if the stack file did not name it.
    given = {key: value for key, value in values.items() if value is not None or key not in TOP_LEVEL_KEYS}
    try:
        settings = StackSettings.model_validate(given, context=context)
    except ValidationError as err:
        raise settings_error(err) from None
    settings._project, settings._stack, settings._secrets = project, stack, secrets
    return settings


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the `rag-infra:` stack configuration, keyed as in the stack files."""
    return StackSettings.model_json_schema(by_alias=True)


def _read_secret(name: str) -> pulumi.Output[str] | None:
    """A configured secret, or None. Pulumi.yaml declares each with an empty default: generate one."""
    full_key = config_key(name)
    raw = pulumi.runtime.config.get_config(full_key)
    if not raw:
        return None
    if not pulumi.runtime.config.is_config_secret(full_key):
        raise SettingsError(
            f"{full_key} must be set as a secret (`pulumi config set --secret {name} ...`), not in plaintext"
        )
    if name == "timescaleUrl" and not _looks_like_dsn(raw):
        # The value is never repeated: it carries a password.
        raise SettingsError(
            f"{full_key} must be a postgresql:// URL or a libpq key=value string (host=… dbname=…); "
            "the value set is neither (not shown: it is a secret)"
        )
    if name == "alertWebhookUrl" and urlsplit(raw).scheme not in ("http", "https"):
        raise SettingsError(
            f"{full_key} must be an http:// or https:// URL (Alertmanager's webhook receiver); "
            "the value set is not (not shown: it is a secret)"
        )
    return pulumi.Output.secret(raw)


def _looks_like_dsn(text: str) -> bool:
    scheme = urlsplit(text).scheme
    return (scheme in ("postgres", "postgresql") and bool(urlsplit(text).hostname)) or (
        "://" not in text and "=" in text
    )


def _refuse_look_alike_namespaces(keys: list[str]) -> None:
    """`raginfra:qdrant` or `rag_infra:qdrant` would be silently ignored by the program."""

    def folded(namespace: str) -> str:
        return "".join(ch for ch in namespace.lower() if ch.isalnum())

    for key in keys:
        namespace, _, name = key.partition(":")
        if namespace != PROJECT and folded(namespace) == folded(PROJECT):
            raise SettingsError(f"config key {key} is not read: did you mean {config_key(name)}?")


def load_settings() -> StackSettings:
    """Read and parse the running program's `rag-infra:` configuration."""
    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    keys = list(pulumi.runtime.config.CONFIG.get())
    _refuse_look_alike_namespaces(keys)
    present = [k[len(prefix) :] for k in keys if k.startswith(prefix)]
    values: dict[str, Any] = {}
    for name in present:
        if name in SECRET_KEYS:
            continue
        if name == "environment":
            values[name] = config.get(name)
        elif name in TOP_LEVEL_KEYS:
            try:
                values[name] = config.get_object(name)
            except Exception as err:  # the SDK raises its own ConfigTypeError for bad JSON
                raise SettingsError(f"{config_key(name)} must be a structured (YAML) value: {err}") from None
        else:
            values[name] = None  # reported as unknown by parse_settings
    secrets = Secrets(*(_read_secret(name) for name in SECRET_KEYS))
    return parse_settings(values, stack=pulumi.get_stack(), secrets=secrets)


if __name__ == "__main__":
    print(json.dumps(config_schema(), indent=2))
