"""Pure renderer of Kong 3 declarative configuration (kong.yml) from typed route settings.

Field names, types and allowed values follow Kong 3.9's own schemas (facts/kong-nginx.md §2-3).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from components.kong.settings import ConsumerSettings, CorsSettings, KongRouteSettings, RateLimitSettings

FORMAT_VERSION = "3.0"
JWT_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Credential:
    """A consumer's JWT credential: `key` must equal the token's `iss` claim."""

    username: str
    key: str
    secret: str


def segment_path(path: str) -> str:
    """A Kong regex path matching `path` as whole segments only.

    A plain Kong path is a string prefix, so `/rag-search` would also match `/rag-searchX`.
    `(/|$)` avoids look-ahead, which the Rust regex engine behind Kong's default
    `traditional_compatible` router does not support.
    """
    trimmed = path.rstrip("/")
    if not trimmed:
        return "/"  # the root matches everything anyway
    return "~" + re.escape(trimmed).replace("\\-", "-") + "(/|$)"


def _rate_limit_config(settings: RateLimitSettings) -> dict:
    config: dict = {
        period: value
        for period, value in (
            ("second", settings.second),
            ("minute", settings.minute),
            ("hour", settings.hour),
            ("day", settings.day),
        )
        if value is not None
    }
    config.update(
        policy=settings.policy,
        limit_by=settings.limit_by,
        fault_tolerant=True,
        hide_client_headers=False,
    )
    if settings.redis is not None:
        # The nested `redis` record is the 3.6+ form; the flat redis_* fields are deprecated.
        config["redis"] = {
            "host": settings.redis.host,
            "port": settings.redis.port,
            "database": settings.redis.database,
            "timeout": 2000,
        }
    return config


def _route_plugins(route: KongRouteSettings, rate_limit: RateLimitSettings) -> list[dict]:
    plugins = []
    if "jwt" not in route.exempt_from:
        plugins.append(
            {
                "name": "jwt",
                "config": {
                    # `exp` is only checked when listed.
                    "claims_to_verify": ["exp"],
                    "key_claim_name": "iss",
                    "header_names": ["authorization"],
                    "uri_param_names": [],
                    "secret_is_base64": False,
                    # CORS (priority 2000) answers preflights before jwt (1450) runs.
                    "run_on_preflight": False,
                },
            }
        )
    if "rate-limiting" not in route.exempt_from:
        plugins.append({"name": "rate-limiting", "config": _rate_limit_config(rate_limit)})
    return plugins


def render_kong_config(
    routes: Sequence[KongRouteSettings],
    rate_limit: RateLimitSettings,
    cors: CorsSettings,
    consumers: Sequence[ConsumerSettings],
    jwt_secret: str,
) -> str:
    """kong.yml text (YAML) for DB-less mode or `kong config db_import`."""
    document = {
        "_format_version": FORMAT_VERSION,
        "_transform": True,
        "services": [
            {
                "name": f"{route.name}-service",
                "url": route.upstream_url,
                "routes": [
                    {
                        "name": route.name,
                        "paths": [segment_path(path) for path in route.paths],
                        "methods": list(route.methods),
                        "protocols": ["http", "https"],
                        "strip_path": route.strip_path,
                        "preserve_host": False,
                        # An exemption is declared in the config itself, where the policy
                        # pack (kong-route-has-jwt-and-rate-limiting) reads it.
                        "tags": ["rag-infra", *(f"exempt-from-{plugin}" for plugin in route.exempt_from)],
                        "plugins": _route_plugins(route, rate_limit),
                    }
                ],
            }
            for route in routes
        ],
        "plugins": [
            {
                "name": "cors",
                "config": {
                    "origins": list(cors.origins),
                    "methods": list(cors.methods),
                    "headers": list(cors.headers),
                    "exposed_headers": ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
                    "credentials": cors.credentials,
                    "max_age": cors.max_age,
                    "preflight_continue": False,
                    "private_network": False,
                },
            },
            {
                # Metrics per route on the status listener's /metrics (monitoring scrapes it).
                # Every metric family of the plugin is off unless named here (Kong 3.9
                # kong/plugins/prometheus/schema.lua): the alert rules need the status codes
                # and the latency histogram.
                "name": "prometheus",
                "config": {
                    "status_code_metrics": True,
                    "latency_metrics": True,
                    "bandwidth_metrics": True,
                    "upstream_health_metrics": True,
                    "per_consumer": False,
                },
            },
        ],
        "consumers": [
            {
                "username": consumer.username,
                "jwt_secrets": [{"key": consumer.key, "algorithm": JWT_ALGORITHM, "secret": jwt_secret}],
            }
            for consumer in consumers
        ],
    }
    header = "# Rendered by rag-infra (components/kong/config.py). Do not edit by hand.\n"
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
