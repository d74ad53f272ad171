"""Typed stack settings: the whole `rag-infra:` configuration, parsed and validated once.

`parse_settings` is a pure function from the raw config values to frozen dataclasses, so it can
be tested without Pulumi. `load_settings` reads the values from the running Pulumi program.
Every error names the key, the value that was given and what is allowed, and it is raised
before any resource is registered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, Literal, TypeVar

import pulumi

PROJECT = "rag-infra"

# Images are pinned to real release tags; `latest` is never a default and never accepted.
DEFAULT_QDRANT_IMAGE = "qdrant/qdrant:v1.19.0"
DEFAULT_NGINX_IMAGE = "nginx:1.30.4-alpine"
DEFAULT_KONG_IMAGE = "kong:3.9.3"
# Kong's database and the Neon storage controller's database.
DEFAULT_POSTGRES_IMAGE = "postgres:17.11-alpine"
DEFAULT_NEON_STORAGE_IMAGE = (
    "ghcr.io/neondatabase/neon:release-9129"
    "@sha256:166022a72bf9983eba96d061d794f4740edbd4c3301e66202c1180acce9a323c"
)
DEFAULT_NEON_COMPUTE_IMAGE = "ghcr.io/neondatabase/compute-node-v17:release-compute-9073"
# MinIO left Docker Hub in 2026; quay.io keeps the last published releases.
DEFAULT_MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z"
DEFAULT_MINIO_MC_IMAGE = "quay.io/minio/mc:RELEASE.2025-08-13T08-35-41Z"

# Per consumer and Kong node (local policy); the plan's load test runs well under it.
DEFAULT_RATE_LIMIT_PER_MINUTE = 600

# Qdrant learned to let every node bootstrap from node 0 (bootstrap == own uri) in 1.13.3.
MIN_QDRANT_VERSION = (1, 13, 3)

SECRET_KEYS = ("timescaleUrl", "oldQdrantApiKey", "qdrantApiKey", "neonPassword", "kongJwtSecret")

Environment = Literal["dev", "prod"]
T = TypeVar("T")


class SettingsError(ValueError):
    """A stack configuration value is missing, malformed or not allowed."""


def _key(path: str) -> str:
    return f"{PROJECT}:{path}"


class _Object:
    """One structured config object; remembers which keys were read so typos are caught."""

    def __init__(self, path: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{_key(path)} must be an object, got {raw!r}")
        self.path = path
        self.raw = raw
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return _key(f"{self.path}.{name}")

    def _get(self, name: str, default: Any) -> Any:
        self._read.add(name)
        return self.raw.get(name, default)

    def int(
        self,
        name: str,
        default: int | None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        odd: bool = False,
    ) -> int:
        value = self._get(name, default)
        return _check_int(self.key(name), value, minimum=minimum, maximum=maximum, odd=odd)

    def optional_int(self, name: str, *, minimum: int) -> int | None:
        value = self._get(name, None)
        return None if value is None else _check_int(self.key(name), value, minimum=minimum)

    def port(self, name: str, default: int) -> int:
        return self.int(name, default, minimum=1, maximum=65535)

    def bool(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise SettingsError(f"{self.key(name)} must be true or false, got {value!r}")
        return value

    def str(
        self,
        name: str,
        default: str | None,
        *,
        choices: Sequence[str] | None = None,
        pattern: str | None = None,
        what: str = "",
    ) -> str:
        value = self._get(name, default)
        return _check_str(self.key(name), value, choices=choices, pattern=pattern, what=what)

    def optional_str(self, name: str, *, pattern: str | None = None, what: str = "") -> str | None:
        value = self._get(name, None)
        if value is None:
            return None
        return _check_str(self.key(name), value, pattern=pattern, what=what)

    def image(self, name: str, default: str) -> str:
        return _check_image(self.key(name), self._get(name, default))

    def str_list(
        self,
        name: str,
        default: Sequence[str],
        *,
        check: Callable[[str, Any], str] | None = None,
        allow_empty: bool = True,
    ) -> tuple[str, ...]:
        value = self._get(name, list(default))
        key = self.key(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{key} must be a list of strings, got {value!r}")
        if not allow_empty and not value:
            raise SettingsError(f"{key} must not be empty")
        return tuple(check(f"{key}[{i}]", v) if check else v for i, v in enumerate(value))

    def child(self, name: str) -> _Object:
        return _Object(f"{self.path}.{name}", self._get(name, {}))

    def children(self, name: str, default: Sequence[Mapping[str, Any]]) -> list[_Object]:
        value = self._get(name, list(default))
        if not isinstance(value, list):
            raise SettingsError(f"{self.key(name)} must be a list of objects, got {value!r}")
        return [_Object(f"{self.path}.{name}[{i}]", item) for i, item in enumerate(value)]

    def finish(self) -> None:
        """Fail on any key that no reader asked for: a typo must not be silently ignored."""
        unknown = sorted(set(self.raw) - self._read)
        if unknown:
            raise SettingsError(
                f"{_key(self.path)} has unknown key(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(self._read))}"
            )


def _check_int(
    key: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    odd: bool = False,
) -> int:
    # bool is an int in Python; `true` is never a valid count.
    valid = isinstance(value, int) and not isinstance(value, bool)
    if valid and minimum is not None and value < minimum:
        valid = False
    if valid and maximum is not None and value > maximum:
        valid = False
    if valid and odd and value % 2 == 0:
        valid = False
    if not valid:
        bounds = []
        if minimum is not None:
            bounds.append(f">= {minimum}")
        if maximum is not None:
            bounds.append(f"<= {maximum}")
        kind = "an odd number" if odd else "a whole number"
        raise SettingsError(f"{key} must be {kind} {' and '.join(bounds)}, got {value!r}".replace("  ", " "))
    return value


def _check_str(
    key: str,
    value: Any,
    *,
    choices: Sequence[str] | None = None,
    pattern: str | None = None,
    what: str = "",
) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{key} must be a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise SettingsError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise SettingsError(f"{key} must be {what or 'a string matching ' + pattern}, got {value!r}")
    return value


_IMAGE_RE = re.compile(
    r"(?P<repo>[a-z0-9][a-z0-9._/:-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)


def _check_image(key: str, value: Any) -> str:
    """An image reference pinned by a tag other than `latest`, or by digest."""
    text = _check_str(key, value)
    match = _IMAGE_RE.fullmatch(text)
    if not match or not (match["tag"] or match["digest"]) or match["tag"] == "latest":
        raise SettingsError(
            f"{key} must be an image pinned by a release tag or digest (not `latest`), got {value!r}"
        )
    return text


def image_version(image: str) -> tuple[int, ...] | None:
    """The numeric version in an image tag (`qdrant/qdrant:v1.16.3` -> (1, 16, 3)), if any."""
    match = _IMAGE_RE.fullmatch(image)
    tag = match["tag"] if match else None
    version = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", tag or "")
    if not version:
        return None
    return tuple(int(part) for part in version.groups(default="0"))


def _check_port_list_unique(key: str, ports: Mapping[str, int]) -> None:
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise SettingsError(f"{key} uses port {port} for both {seen[port]} and {name}")
        seen[port] = name


# --------------------------------------------------------------------------------------------
# The settings themselves


@dataclass(frozen=True)
class Features:
    """The seed's feature flags: a tier that is off is not deployed and its app flag reads false."""

    neon: bool
    qdrant_cluster: bool
    kong_gateway: bool


@dataclass(frozen=True)
class CollectionSettings:
    """One Qdrant collection created on the cluster with HA parameters."""

    name: str
    vector_size: int
    distance: str
    shard_number: int
    replication_factor: int
    write_consistency_factor: int


@dataclass(frozen=True)
class QdrantSettings:
    """The Qdrant Raft cluster and its NGINX load balancer."""

    nodes: int
    image: str
    lb_image: str
    lb_port: int
    lb_grpc_port: int
    memory_mb: int | None
    collections: tuple[CollectionSettings, ...]


@dataclass(frozen=True)
class ObjectStorageSettings:
    """The S3-compatible store (MinIO) holding Neon's layers and WAL backups."""

    image: str
    mc_image: str
    bucket: str
    region: str


@dataclass(frozen=True)
class BranchSettings:
    """A named Neon branch off another branch, optionally at an LSN or a timestamp (PITR)."""

    name: str
    parent: str
    lsn: str | None
    timestamp: str | None
    compute: bool
    compute_port: int | None


@dataclass(frozen=True)
class NeonSettings:
    """Neon's storage tier (pageserver, safekeepers, broker, controller) and its compute."""

    pg_version: int
    safekeepers: int
    storage_image: str
    compute_image: str
    compute_port: int
    pageserver_pg_port: int
    safekeeper_http_port: int
    database: str
    user: str
    pitr_retention: str
    memory_mb: int | None
    object_storage: ObjectStorageSettings
    branches: tuple[BranchSettings, ...]


@dataclass(frozen=True)
class KongRouteSettings:
    """A Kong service plus its route: whole-segment path matching to one upstream."""

    name: str
    paths: tuple[str, ...]
    methods: tuple[str, ...]
    upstream_url: str
    strip_path: bool
    exempt_from: tuple[str, ...]


@dataclass(frozen=True)
class RedisSettings:
    """Where rate-limit counters live when `rateLimit.policy` is `redis`."""

    host: str
    port: int
    database: int


@dataclass(frozen=True)
class RateLimitSettings:
    """Kong rate-limiting limits; at least one period is set."""

    second: int | None
    minute: int | None
    hour: int | None
    day: int | None
    policy: str
    limit_by: str
    redis: RedisSettings | None


@dataclass(frozen=True)
class CorsSettings:
    """Kong CORS plugin settings."""

    origins: tuple[str, ...]
    methods: tuple[str, ...]
    headers: tuple[str, ...]
    credentials: bool
    max_age: int


@dataclass(frozen=True)
class ConsumerSettings:
    """A Kong consumer with one HS256 JWT credential whose `key` is the token's `iss`."""

    username: str
    key: str


@dataclass(frozen=True)
class KongSettings:
    """The Kong gateway in front of the RAG services."""

    image: str
    db_image: str
    database: str
    proxy_port: int
    admin_port: int
    status_port: int
    manager: bool
    manager_port: int
    memory_mb: int | None
    routes: tuple[KongRouteSettings, ...]
    rate_limit: RateLimitSettings
    cors: CorsSettings
    consumers: tuple[ConsumerSettings, ...]


@dataclass(frozen=True)
class PostgresMigrationSettings:
    """TimescaleDB -> Neon copy."""

    enabled: bool
    tables: tuple[str, ...]
    batch_rows: int


@dataclass(frozen=True)
class QdrantMigrationSettings:
    """Single-node Qdrant -> cluster copy."""

    enabled: bool
    source_url: str | None
    collections: tuple[str, ...]
    batch_size: int


@dataclass(frozen=True)
class MigrationSettings:
    """Both data migrations."""

    postgres: PostgresMigrationSettings
    qdrant: QdrantMigrationSettings


@dataclass(frozen=True)
class Secrets:
    """Secret config values; `None` where the stack did not set one (it is then generated)."""

    timescale_url: pulumi.Output[str] | None = None
    old_qdrant_api_key: pulumi.Output[str] | None = None
    qdrant_api_key: pulumi.Output[str] | None = None
    neon_password: pulumi.Output[str] | None = None
    kong_jwt_secret: pulumi.Output[str] | None = None


@dataclass(frozen=True)
class StackSettings:
    """Everything the program needs from the stack configuration."""

    project: str
    stack: str
    environment: Environment
    docker_hosts: tuple[str, ...]
    features: Features
    qdrant: QdrantSettings
    neon: NeonSettings
    kong: KongSettings
    migration: MigrationSettings
    secrets: Secrets

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def prefix(self) -> str:
        """Prefix of every Docker object name, so two stacks can share one Docker host."""
        return f"{self.project}-{self.stack}"


# --------------------------------------------------------------------------------------------
# Parsers, one per object


_NAME = r"[a-z0-9][a-z0-9-]{0,62}"
_KONG_NAME = r"[A-Za-z0-9._~-]+"  # Kong's utf8_name, ASCII part
_HTTP_METHODS = ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT")
_DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
_DOCKER_HOST = r"(unix|ssh|tcp|npipe)://\S+"
_HUMANTIME = r"\d+\s*(s|sec|secs|m|min|mins|h|hr|hrs|hour|hours|d|day|days|w|week|weeks)"


def _parse_features(raw: Any) -> Features:
    obj = _Object("features", raw if raw is not None else {})
    features = Features(
        neon=obj.bool("neon", True),
        qdrant_cluster=obj.bool("qdrantCluster", True),
        kong_gateway=obj.bool("kongGateway", True),
    )
    obj.finish()
    return features


def _parse_collection(obj: _Object, nodes: int) -> CollectionSettings:
    replication = obj.int("replicationFactor", min(2, nodes), minimum=1)
    if replication > nodes:
        # Qdrant silently caps replicas at the number of peers; say so instead.
        raise SettingsError(
            f"{obj.key('replicationFactor')} must be <= qdrant.nodes ({nodes}), got {replication}"
        )
    collection = CollectionSettings(
        name=obj.str("name", None, pattern=r"[A-Za-z0-9_-]{1,255}", what="letters, digits, _ or -"),
        vector_size=obj.int("vectorSize", None, minimum=1, maximum=65536),
        distance=obj.str("distance", "Cosine", choices=_DISTANCES),
        shard_number=obj.int("shardNumber", nodes, minimum=1),
        replication_factor=replication,
        write_consistency_factor=obj.int("writeConsistencyFactor", 1, minimum=1),
    )
    if collection.write_consistency_factor > replication:
        raise SettingsError(
            f"{obj.key('writeConsistencyFactor')} must be <= replicationFactor ({replication}), "
            f"got {collection.write_consistency_factor}"
        )
    obj.finish()
    return collection


def _unique(key: str, names: Sequence[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise SettingsError(f"{key} lists {name!r} twice; names must be unique")
        seen.add(name)


def _parse_qdrant(raw: Any) -> QdrantSettings:
    obj = _Object("qdrant", raw if raw is not None else {})
    nodes = obj.int("nodes", 3, minimum=1, odd=True)
    image = obj.image("image", DEFAULT_QDRANT_IMAGE)
    version = image_version(image)
    if version is not None and version < MIN_QDRANT_VERSION:
        raise SettingsError(
            f"{obj.key('image')} must be Qdrant >= {'.'.join(map(str, MIN_QDRANT_VERSION))} "
            f"(every node bootstraps from node 0), got {image!r}"
        )
    settings = QdrantSettings(
        nodes=nodes,
        image=image,
        lb_image=obj.image("lbImage", DEFAULT_NGINX_IMAGE),
        lb_port=obj.port("lbPort", 6333),
        lb_grpc_port=obj.port("lbGrpcPort", 6334),
        memory_mb=obj.optional_int("memoryMb", minimum=64),
        collections=tuple(_parse_collection(c, nodes) for c in obj.children("collections", [])),
    )
    _unique(obj.key("collections"), [c.name for c in settings.collections])
    _check_port_list_unique(_key("qdrant"), {"lbPort": settings.lb_port, "lbGrpcPort": settings.lb_grpc_port})
    obj.finish()
    return settings


def _check_timestamp(key: str, value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise SettingsError(f"{key} must be an ISO 8601 timestamp with a time zone, got {value!r}")
    return value


def _parse_branch(obj: _Object) -> BranchSettings:
    branch = BranchSettings(
        name=obj.str("name", None, pattern=_NAME, what="lowercase letters, digits and -"),
        parent=obj.str("parent", "main", pattern=_NAME, what="a branch name"),
        lsn=obj.optional_str("lsn", pattern=r"[0-9A-F]{1,8}/[0-9A-F]{1,8}", what="an LSN like 0/169AD58"),
        timestamp=obj.optional_str("timestamp"),
        compute=obj.bool("compute", False),
        compute_port=obj.optional_int("computePort", minimum=1),
    )
    if branch.name == "main":
        raise SettingsError(f"{obj.key('name')} must not be 'main' (main is the root timeline)")
    if branch.timestamp is not None:
        _check_timestamp(obj.key("timestamp"), branch.timestamp)
    if branch.lsn and branch.timestamp:
        raise SettingsError(f"{_key(obj.path)} may set lsn or timestamp, not both")
    if branch.compute and branch.compute_port is None:
        raise SettingsError(f"{obj.key('computePort')} is required when compute is true")
    obj.finish()
    return branch


def _parse_neon(raw: Any, environment: Environment) -> NeonSettings:
    obj = _Object("neon", raw if raw is not None else {})
    storage = obj.child("objectStorage")
    object_storage = ObjectStorageSettings(
        image=storage.image("image", DEFAULT_MINIO_IMAGE),
        mc_image=storage.image("mcImage", DEFAULT_MINIO_MC_IMAGE),
        bucket=storage.str("bucket", "neon", pattern=r"[a-z0-9][a-z0-9.-]{2,62}", what="an S3 bucket name"),
        region=storage.str("region", "eu-north-1"),
    )
    storage.finish()
    settings = NeonSettings(
        pg_version=obj.int("pgVersion", 17, minimum=14, maximum=17),
        # The walproposer allows at most 31 safekeepers; prod's default is the plan's quorum of 3.
        safekeepers=obj.int("safekeepers", 3 if environment == "prod" else 1, minimum=1, maximum=31),
        storage_image=obj.image("storageImage", DEFAULT_NEON_STORAGE_IMAGE),
        compute_image=obj.image("computeImage", DEFAULT_NEON_COMPUTE_IMAGE),
        compute_port=obj.port("computePort", 5435),
        pageserver_pg_port=obj.port("pageserverPgPort", 6400),
        safekeeper_http_port=obj.port("safekeeperHttpPort", 7676),
        database=obj.str("database", "rag", pattern=r"[a-z_][a-z0-9_]{0,62}", what="a Postgres identifier"),
        user=obj.str("user", "rag", pattern=r"[a-z_][a-z0-9_]{0,62}", what="a Postgres identifier"),
        pitr_retention=obj.str(
            "pitrRetention", "30 days", pattern=_HUMANTIME, what="a duration like '30 days'"
        ),
        memory_mb=obj.optional_int("memoryMb", minimum=64),
        object_storage=object_storage,
        branches=tuple(_parse_branch(b) for b in obj.children("branches", [])),
    )
    image_major = re.search(r"compute-node-v(\d+)", settings.compute_image)
    if image_major and int(image_major[1]) != settings.pg_version:
        # Timelines are created for pgVersion; a compute of another major cannot read them.
        raise SettingsError(
            f"{obj.key('computeImage')} runs Postgres {image_major[1]} but neon.pgVersion is "
            f"{settings.pg_version}; use compute-node-v{settings.pg_version}, got {settings.compute_image!r}"
        )
    names = [b.name for b in settings.branches]
    _unique(obj.key("branches"), names)
    for index, branch in enumerate(settings.branches):
        if branch.parent != "main" and branch.parent not in names[:index]:
            raise SettingsError(
                f"{obj.key(f'branches[{index}].parent')} must be main or a branch listed before "
                f"{branch.name!r}, got {branch.parent!r}"
            )
    ports = [settings.compute_port] + [b.compute_port for b in settings.branches if b.compute_port]
    if len(set(ports)) != len(ports):
        raise SettingsError(f"{obj.key('branches')}: every compute needs its own port, got {ports}")
    obj.finish()
    return settings


def _check_route_path(key: str, value: str) -> str:
    if not value.startswith("/") or "//" in value or value.startswith("~"):
        raise SettingsError(f"{key} must be a plain path starting with / (no //), got {value!r}")
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
        raise SettingsError(f"{key} may contain only letters, digits and . _ ~ - /, got {value!r}")
    return value


def _check_method(key: str, value: str) -> str:
    if value not in _HTTP_METHODS:
        raise SettingsError(
            f"{key} must be an uppercase HTTP method ({', '.join(_HTTP_METHODS)}), got {value!r}"
        )
    return value


def _check_origin(key: str, value: str) -> str:
    if value != "*":
        try:
            re.compile(value)
        except re.error as err:
            raise SettingsError(f"{key} must be * or a valid regex, got {value!r} ({err})") from None
    return value


_DEFAULT_ROUTES = (
    {"name": "rag-search", "paths": ["/rag-search"], "upstreamUrl": "http://documentation-api:3401"},
    {"name": "rag-query", "paths": ["/rag-query"], "upstreamUrl": "http://llamaindex-query:8202"},
)


def _parse_route(obj: _Object) -> KongRouteSettings:
    route = KongRouteSettings(
        name=obj.str(
            "name", None, pattern=_KONG_NAME, what="letters, digits, ., -, _ or ~ (Kong's name rule)"
        ),
        paths=obj.str_list("paths", [], check=_check_route_path, allow_empty=False),
        methods=obj.str_list("methods", ["GET", "POST", "OPTIONS"], check=_check_method, allow_empty=False),
        upstream_url=obj.str("upstreamUrl", None, pattern=r"https?://[^\s/]+(/\S*)?", what="an http(s) URL"),
        strip_path=obj.bool("stripPath", True),
        exempt_from=obj.str_list(
            "exemptFrom",
            [],
            check=lambda k, v: _check_str(k, v, choices=("jwt", "rate-limiting")),
        ),
    )
    obj.finish()
    return route


def _parse_rate_limit(obj: _Object, database: str) -> RateLimitSettings:
    policies = ("local", "redis") if database == "off" else ("local", "cluster", "redis")
    periods = {p: obj.optional_int(p, minimum=1) for p in ("second", "minute", "hour", "day")}
    if all(v is None for v in periods.values()):
        periods["minute"] = DEFAULT_RATE_LIMIT_PER_MINUTE
    policy = obj.str("policy", "local", choices=policies)
    redis_obj = obj.child("redis")
    redis = None
    if policy == "redis":
        redis = RedisSettings(
            host=redis_obj.str("host", None),
            port=redis_obj.port("port", 6379),
            database=redis_obj.int("database", 0, minimum=0),
        )
    elif redis_obj.raw:
        raise SettingsError(f"{obj.key('redis')} is only used with policy redis, got policy {policy!r}")
    redis_obj.finish()
    settings = RateLimitSettings(
        **periods,
        policy=policy,
        limit_by=obj.str("limitBy", "consumer", choices=("consumer", "credential", "ip", "service")),
        redis=redis,
    )
    set_periods = [(p, v) for p, v in periods.items() if v is not None]
    for (small, small_limit), (large, large_limit) in pairwise(set_periods):
        if large_limit < small_limit:
            raise SettingsError(
                f"{obj.key(large)} ({large_limit}) must not be smaller than {small} ({small_limit})"
            )
    obj.finish()
    return settings


def _parse_kong(raw: Any, environment: Environment) -> KongSettings:
    obj = _Object("kong", raw if raw is not None else {})
    database = obj.str("database", "off", choices=("off", "postgres"))
    routes = tuple(_parse_route(r) for r in obj.children("routes", _DEFAULT_ROUTES))
    if not routes:
        raise SettingsError(f"{obj.key('routes')} must list at least one route")
    _unique(obj.key("routes"), [r.name for r in routes])
    rate_limit = _parse_rate_limit(obj.child("rateLimit"), database)
    cors_obj = obj.child("cors")
    cors = CorsSettings(
        origins=cors_obj.str_list(
            "origins", ["*"] if environment == "dev" else [], check=_check_origin, allow_empty=False
        ),
        methods=cors_obj.str_list("methods", ["GET", "POST", "OPTIONS"], check=_check_method),
        headers=cors_obj.str_list("headers", ["Authorization", "Content-Type"]),
        credentials=cors_obj.bool("credentials", False),
        max_age=cors_obj.int("maxAge", 3600, minimum=0),
    )
    cors_obj.finish()
    consumers = []
    for consumer in obj.children("consumers", [{"username": "rag-client"}]):
        username = consumer.str("username", None, pattern=_KONG_NAME, what="letters, digits, ., -, _ or ~")
        consumers.append(ConsumerSettings(username=username, key=consumer.str("key", f"{username}-issuer")))
        consumer.finish()
    _unique(obj.key("consumers"), [c.username for c in consumers])
    _unique(obj.key("consumers[].key"), [c.key for c in consumers])
    settings = KongSettings(
        image=obj.image("image", DEFAULT_KONG_IMAGE),
        db_image=obj.image("dbImage", DEFAULT_POSTGRES_IMAGE),
        database=database,
        proxy_port=obj.port("proxyPort", 8000),
        admin_port=obj.port("adminPort", 8001),
        status_port=obj.port("statusPort", 8100),
        manager=obj.bool("manager", False),
        manager_port=obj.port("managerPort", 8002),
        memory_mb=obj.optional_int("memoryMb", minimum=64),
        routes=routes,
        rate_limit=rate_limit,
        cors=cors,
        consumers=tuple(consumers),
    )
    _check_port_list_unique(
        _key("kong"),
        {
            "proxyPort": settings.proxy_port,
            "adminPort": settings.admin_port,
            "statusPort": settings.status_port,
            "managerPort": settings.manager_port,
        },
    )
    obj.finish()
    return settings


def _parse_migration(raw: Any) -> MigrationSettings:
    obj = _Object("migration", raw if raw is not None else {})
    pg = obj.child("postgres")
    postgres = PostgresMigrationSettings(
        enabled=pg.bool("enabled", False),
        tables=pg.str_list(
            "tables",
            [],
            check=lambda k, v: _check_str(
                k, v, pattern=r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*", what="schema.table"
            ),
        ),
        batch_rows=pg.int("batchRows", 5000, minimum=1),
    )
    pg.finish()
    qd = obj.child("qdrant")
    qdrant = QdrantMigrationSettings(
        enabled=qd.bool("enabled", False),
        source_url=qd.optional_str("sourceUrl"),
        collections=qd.str_list("collections", []),
        batch_size=qd.int("batchSize", 512, minimum=1),
    )
    if qdrant.enabled and not qdrant.source_url:
        raise SettingsError(f"{qd.key('sourceUrl')} is required when migration.qdrant.enabled is true")
    if qdrant.enabled and not qdrant.collections:
        raise SettingsError(f"{qd.key('collections')} must list at least one collection to migrate")
    qd.finish()
    obj.finish()
    return MigrationSettings(postgres=postgres, qdrant=qdrant)


def _parse_docker_hosts(raw: Any) -> tuple[str, ...]:
    key = _key("dockerHosts")
    value = raw if raw is not None else ["unix:///var/run/docker.sock"]
    if not isinstance(value, list) or not value:
        raise SettingsError(f"{key} must be a non-empty list of Docker host URLs, got {value!r}")
    hosts = tuple(
        _check_str(f"{key}[{i}]", v, pattern=_DOCKER_HOST, what="a unix://, ssh:// or tcp:// Docker host URL")
        for i, v in enumerate(value)
    )
    _unique(key, hosts)
    return hosts


TOP_LEVEL_KEYS = (
    "environment",
    "dockerHosts",
    "features",
    "qdrant",
    "neon",
    "kong",
    "migration",
    *SECRET_KEYS,
)


def parse_settings(
    values: Mapping[str, Any],
    *,
    stack: str,
    secrets: Secrets | None = None,
    project: str = PROJECT,
) -> StackSettings:
    """Parse raw config values (`{"qdrant": {...}, ...}`, keys without the project prefix)."""
    unknown = sorted(set(values) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise SettingsError(
            f"unknown config key(s) {', '.join(_key(k) for k in unknown)}; "
            f"allowed: {', '.join(TOP_LEVEL_KEYS)}"
        )
    environment: Environment = _check_str(  # type: ignore[assignment]
        _key("environment"), values.get("environment", "dev"), choices=("dev", "prod")
    )
    settings = StackSettings(
        project=project,
        stack=stack,
        environment=environment,
        docker_hosts=_parse_docker_hosts(values.get("dockerHosts")),
        features=_parse_features(values.get("features")),
        qdrant=_parse_qdrant(values.get("qdrant")),
        neon=_parse_neon(values.get("neon"), environment),
        kong=_parse_kong(values.get("kong"), environment),
        migration=_parse_migration(values.get("migration")),
        secrets=secrets or Secrets(),
    )
    _check_migration_prerequisites(settings)
    return settings


def _check_migration_prerequisites(settings: StackSettings) -> None:
    """A migration needs its target tier, and the Postgres one its source DSN."""
    if settings.migration.postgres.enabled:
        if not settings.features.neon:
            raise SettingsError(
                f"{_key('migration.postgres.enabled')} needs the Neon tier (features.neon: true)"
            )
        if settings.secrets.timescale_url is None:
            raise SettingsError(
                f"{_key('timescaleUrl')} (secret) is required when migration.postgres.enabled is true"
            )
    if settings.migration.qdrant.enabled and not settings.features.qdrant_cluster:
        raise SettingsError(
            f"{_key('migration.qdrant.enabled')} needs the Qdrant cluster (features.qdrantCluster: true)"
        )
    declared = {c.name for c in settings.qdrant.collections}
    for index, name in enumerate(settings.migration.qdrant.collections):
        if name not in declared:
            # The target is created by QdrantCollection with its HA parameters, never by the copy.
            raise SettingsError(
                f"{_key(f'migration.qdrant.collections[{index}]')} must also be listed in qdrant.collections "
                f"(its HA parameters), got {name!r}"
            )


def _read_secret(name: str) -> pulumi.Output[str] | None:
    """A configured secret, or None. Pulumi.yaml declares each with an empty default: generate one."""
    full_key = _key(name)
    raw = pulumi.runtime.config.get_config(full_key)
    if not raw:
        return None
    if not pulumi.runtime.config.is_config_secret(full_key):
        raise SettingsError(
            f"{full_key} must be set as a secret (`pulumi config set --secret {name} ...`), not in plaintext"
        )
    return pulumi.Output.secret(raw)


def load_settings() -> StackSettings:
    """Read and parse the running program's `rag-infra:` configuration."""
    config = pulumi.Config(PROJECT)
    prefix = f"{PROJECT}:"
    present = [k[len(prefix) :] for k in pulumi.runtime.config.CONFIG.get() if k.startswith(prefix)]
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
                raise SettingsError(f"{_key(name)} must be a structured (YAML) value: {err}") from None
        else:
            values[name] = None  # reported as unknown by parse_settings
    secrets = Secrets(
        timescale_url=_read_secret("timescaleUrl"),
        old_qdrant_api_key=_read_secret("oldQdrantApiKey"),
        qdrant_api_key=_read_secret("qdrantApiKey"),
        neon_password=_read_secret("neonPassword"),
        kong_jwt_secret=_read_secret("kongJwtSecret"),
    )
    return parse_settings(values, stack=pulumi.get_stack(), secrets=secrets)
