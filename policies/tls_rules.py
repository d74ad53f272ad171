"""TLS on the public listeners: every port that Kong, the Qdrant LB or the pooler publishes
serves TLS, read from what the service runs with (Kong's KONG_PROXY_LISTEN `ssl` flag, an
nginx `listen … ssl`, pgbouncer's `client_tls_sslmode`). Mandatory in prod, advisory in dev
(which may stay plaintext)."""

from __future__ import annotations

import re

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.common import component, containers_of, envs, file_text, label_of, number, published_ports

PUBLIC = ("kong", "qdrant-lb", "neon-pooler")
NGINX_CONF = "/etc/nginx/nginx.conf"
PGBOUNCER_INI = "/var/db/postgres/pgbouncer/pgbouncer.ini"
TLS_MODES = ("require", "verify-ca", "verify-full")


def _kong_tls_ports(workload) -> set[int]:
    variable = "KONG_PROXY_LISTEN="
    listen = next((e.removeprefix(variable) for e in envs(workload.props) if e.startswith(variable)), "")
    ports = set()
    for entry in listen.split(","):
        words = entry.split()
        if words and "ssl" in words[1:]:
            ports.add(int(words[0].rsplit(":", 1)[1]))
    return ports


def _nginx_tls_ports(text: str) -> set[int]:
    return {
        int(port) for port in re.findall(r"^\s*listen\s+(?:[\w.\[\]:]*:)?(\d+)\b[^;]*\bssl\b", text, re.M)
    }


def _pgbouncer_requires_tls(text: str) -> bool:
    mode = re.search(r"^\s*client_tls_sslmode\s*=\s*(\S+)", text, re.M)
    return bool(mode) and mode[1] in TLS_MODES


def _plaintext_ports(args: StackValidationArgs, workload) -> list[int]:
    ports = [int(number(p.get("internal"))) for p in published_ports(workload.props)]
    kind = component(workload.props)
    if kind == "kong":
        tls = _kong_tls_ports(workload)
    elif kind == "qdrant-lb":
        tls = _nginx_tls_ports(file_text(args.resources, workload, NGINX_CONF) or "")
    else:
        ini = file_text(args.resources, workload, PGBOUNCER_INI) or ""
        tls = set(ports) if _pgbouncer_requires_tls(ini) else set()
    return [port for port in ports if port not in tls]


def _public_listeners_tls(args: StackValidationArgs, report: ReportViolation) -> None:
    workloads = containers_of(args.resources, *PUBLIC)
    if not workloads:
        args.not_applicable("no public listener in this stack")
    for workload in workloads:
        plaintext = _plaintext_ports(args, workload)
        if plaintext:
            report(
                f"{component(workload.props)} {label_of(workload)} publishes port(s) "
                f"{', '.join(map(str, plaintext))} without TLS; set tls.enabled (a certificate from "
                "tlsCertificate and tlsPrivateKey, or a generated one)",
                workload.urn,
            )


stack_public_listeners_tls = StackValidationPolicy(
    name="stack-public-listeners-tls",
    description="Kong's proxy, the Qdrant LB (REST and gRPC) and the pooler serve TLS on every port "
    "they publish.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_public_listeners_tls,
)

POLICIES = [stack_public_listeners_tls]
