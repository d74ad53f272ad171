"""Kong rules: every route authenticated and rate limited, CORS origins, admin exposure."""

from __future__ import annotations

import base64

import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from components.kong.cors import origin_allows_any_site
from components.platform.service import FILE_LABEL
from policies.common import (
    CONTAINER,
    SERVICE_FILES,
    WORKLOADS,
    component,
    label,
    number,
    plain,
    port_ip,
    published_ports,
    uploads,
)

DECLARATIVE = "kong.yml"
"""The declarative file: uploaded into a container, or a Swarm secret of the Kong service."""
ADMIN_PORTS = {
    8001: "admin API",
    8444: "admin API (TLS)",
    8100: "status listener",
    8007: "status listener",
    8002: "Kong Manager",
    8445: "Kong Manager (TLS)",
}
REQUIRED_PLUGINS = ("jwt", "rate-limiting")


def _kong_config(args: ResourceValidationArgs) -> dict | None:
    if component(args.props) != "kong":
        return None
    if args.resource_type == CONTAINER:
        text = next((t for path, t in uploads(args.props).items() if path.endswith(DECLARATIVE)), None)
    elif args.resource_type in SERVICE_FILES and str(label(args.props, FILE_LABEL)).endswith(DECLARATIVE):
        data = plain(args.props.get("data"))
        text = base64.b64decode(data).decode() if isinstance(data, str) else None
    else:
        return None
    return yaml.safe_load(text) if text else None


def _routes_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = _kong_config(args)
    if config is None:
        return
    global_plugins = {p.get("name") for p in config.get("plugins") or []}
    for service in config.get("services") or []:
        for route in service.get("routes") or []:
            plugins = global_plugins | {p.get("name") for p in route.get("plugins") or []}
            tags = set(route.get("tags") or [])
            for plugin in REQUIRED_PLUGINS:
                if plugin not in plugins and f"exempt-from-{plugin}" not in tags:
                    report(
                        f"route {route.get('name')} has no {plugin} plugin and no exempt-from-{plugin} tag"
                    )


kong_route_has_jwt_and_rate_limiting = ResourceValidationPolicy(
    name="kong-route-has-jwt-and-rate-limiting",
    description="Every Kong route requires a JWT and is rate limited, unless its config declares "
    "an exemption.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_routes_protected,
)


def _cors_origins(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = _kong_config(args)
    if config is None:
        return
    if args.get_config().get("allowWildcardOrigins", False):
        return
    for plugin in config.get("plugins") or []:
        if plugin.get("name") != "cors":
            continue
        # No origins at all means `*` to Kong (the ACAO header is then `*`).
        origins = (plugin.get("config") or {}).get("origins") or ["*"]
        for origin in origins:
            if origin_allows_any_site(origin):
                report(f"the CORS plugin allows every origin ({origin}); list the application's origins")


kong_cors_origins_not_wildcard = ResourceValidationPolicy(
    name="kong-cors-origins-not-wildcard",
    description="Kong's CORS plugin names the allowed origins instead of *.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_cors_origins,
    config_schema=PolicyConfigSchema(
        properties={"allowWildcardOrigins": {"type": "boolean", "default": False}}
    ),
)


def _admin_loopback(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in WORKLOADS:
        return
    role = component(args.props)
    for port in published_ports(args.props):
        internal, external, ip = number(port.get("internal")), number(port.get("external")), port_ip(port)
        if ip == "127.0.0.1":
            continue
        if role == "kong" and internal in ADMIN_PORTS:
            report(f"Kong's {ADMIN_PORTS[internal]} (port {internal}) is published on {ip}; use 127.0.0.1")
        elif role == "operator-access":
            # Everything the forwarder publishes is an operator port.
            report(f"operator access publishes port {external} on {ip}; use 127.0.0.1")


kong_admin_loopback_only = ResourceValidationPolicy(
    name="kong-admin-loopback-only",
    description="Kong's admin API, status listener and Manager are published on the host's loopback "
    "only (a Swarm service cannot bind loopback: it publishes none of them, OperatorAccess does).",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_admin_loopback,
)

POLICIES = [kong_route_has_jwt_and_rate_limiting, kong_cors_origins_not_wildcard, kong_admin_loopback_only]
