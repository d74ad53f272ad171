"""Settings of the Kong tier (`rag-infra:kong`): routes, rate limiting, CORS and consumers."""

import re
from collections.abc import Mapping
from itertools import pairwise
from typing import Any, Self

from pydantic import ValidationInfo, model_validator

from components.platform.settings import (
    DEFAULT_POSTGRES_IMAGE,
    FLAG,
    IMAGE,
    PORT,
    ConfigModel,
    fail,
    is_prod,
    items,
    optional,
    text,
    unique,
    unique_ports,
    whole,
)

DEFAULT_KONG_IMAGE = "kong:3.9.3"
# Per consumer and Kong node (local policy); the plan's load test runs well under it.
DEFAULT_RATE_LIMIT_PER_MINUTE = 600

_KONG_NAME = r"[A-Za-z0-9._~-]+"  # Kong's utf8_name, ASCII part
_HTTP_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")
_PERIODS = ("second", "minute", "hour", "day")
_DEFAULT_ROUTES = (
    {"name": "rag-search", "paths": ["/rag-search"], "upstreamUrl": "http://documentation-api:3401"},
    {"name": "rag-query", "paths": ["/rag-query"], "upstreamUrl": "http://llamaindex-query:8202"},
)


def _check_route_path(path: str) -> None:
    if not path.startswith("/") or "//" in path:
        fail(f"must be a plain path starting with / (no //), got {path!r}")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", path):
        fail(f"may contain only letters, digits and . _ ~ - /, got {path!r}")


def _check_method(method: str) -> None:
    if method not in _HTTP_METHODS:
        fail(f"must be an uppercase HTTP method ({', '.join(_HTTP_METHODS)}), got {method!r}")


def _check_origin(origin: str) -> None:
    if origin != "*":
        try:
            re.compile(origin)
        except re.error as err:
            fail(f"must be * or a valid regex, got {origin!r} ({err})")


_METHOD = text(check=_check_method)


class KongRouteSettings(ConfigModel):
    """A Kong service plus its route: whole-segment path matching to one upstream."""

    name: text(_KONG_NAME, "letters, digits, ., -, _ or ~ (Kong's name rule)")
    paths: items(text(check=_check_route_path), non_empty=True)
    methods: items(_METHOD, non_empty=True) = ("GET", "POST", "OPTIONS")
    upstream_url: text(r"https?://[^\s/]+(/\S*)?", "an http(s) URL")
    strip_path: FLAG = True
    exempt_from: items(text(choices=("jwt", "rate-limiting"))) = ()


class RedisSettings(ConfigModel):
    """Where rate-limit counters live when `rateLimit.policy` is `redis`."""

    host: text()
    port: PORT = 6379
    database: whole(0) = 0


class RateLimitSettings(ConfigModel):
    """Kong rate-limiting limits; at least one period is set (default: a limit per minute)."""

    second: optional(whole(1)) = None
    minute: optional(whole(1)) = None
    hour: optional(whole(1)) = None
    day: optional(whole(1)) = None
    policy: text(choices=("local", "cluster", "redis")) = "local"
    limit_by: text(choices=("consumer", "credential", "ip", "service")) = "consumer"
    redis: RedisSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_period(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and all(data.get(period) is None for period in _PERIODS):
            return {**data, "minute": DEFAULT_RATE_LIMIT_PER_MINUTE}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.policy == "redis" and self.redis is None:
            fail("is required", "redis.host")
        if self.policy != "redis" and self.redis is not None:
            fail(f"is only used with policy redis, got policy {self.policy!r}", "redis")
        periods = [(p, getattr(self, p)) for p in _PERIODS if getattr(self, p)]
        for (small, small_limit), (large, large_limit) in pairwise(periods):
            if large_limit < small_limit:
                fail(f"({large_limit}) must not be smaller than {small} ({small_limit})", large)
        return self


class CorsSettings(ConfigModel):
    """Kong CORS plugin settings; origins default to `*` in dev and must be listed in prod (the
    policy pack refuses any entry that admits every site there, see `components.kong.cors`)."""

    origins: items(text(check=_check_origin), non_empty=True)
    methods: items(_METHOD) = ("GET", "POST", "OPTIONS")
    headers: items() = ("Authorization", "Content-Type")
    credentials: FLAG = False
    max_age: whole(0) = 3600

    @model_validator(mode="before")
    @classmethod
    def _origins(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and "origins" not in data:
            return {**data, "origins": [] if is_prod(info) else ["*"]}
        return data


class ConsumerSettings(ConfigModel):
    """A Kong consumer with one HS256 JWT credential whose `key` is the token's `iss`."""

    username: text(_KONG_NAME, "letters, digits, ., -, _ or ~")
    key: text()
    """Defaults to `<username>-issuer`."""

    @model_validator(mode="before")
    @classmethod
    def _default_key(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "key" not in data and isinstance(data.get("username"), str):
            return {**data, "key": f"{data['username']}-issuer"}
        return data


class KongSettings(ConfigModel):
    """The Kong gateway in front of the RAG services."""

    image: IMAGE = DEFAULT_KONG_IMAGE
    db_image: IMAGE = DEFAULT_POSTGRES_IMAGE
    database: text(choices=("off", "postgres")) = "off"
    proxy_port: PORT = 8000
    admin_port: PORT = 8001
    status_port: PORT = 8100
    manager: FLAG = False
    manager_port: PORT = 8002
    memory_mb: optional(whole(64)) = None
    replicas: optional(whole(1)) = None
    """Kong tasks, at most one per Swarm node (each publishes the proxy port in host mode);
    default: one per entry of dockerHosts."""
    routes: items(KongRouteSettings, what="objects", non_empty=True) = _DEFAULT_ROUTES
    rate_limit: RateLimitSettings = {}
    cors: CorsSettings = {}
    consumers: items(ConsumerSettings, what="objects") = ({"username": "rag-client"},)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unique([r.name for r in self.routes], "routes")
        # Two routes on one path: Kong would pick one of them by its own priority rules.
        unique([path for r in self.routes for path in r.paths], "routes[].paths")
        if self.database == "off" and self.rate_limit.policy == "cluster":
            # The cluster policy keeps its counters in Kong's database.
            fail("must be one of local, redis, got 'cluster'", "rateLimit.policy")
        unique([c.username for c in self.consumers], "consumers")
        unique([c.key for c in self.consumers], "consumers[].key")
        unique_ports(
            {
                "proxyPort": self.proxy_port,
                "adminPort": self.admin_port,
                "statusPort": self.status_port,
                "managerPort": self.manager_port,
            }
        )
        return self
