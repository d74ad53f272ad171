"""Every rule of the pack, in one list (imported by __main__.py and policies.check)."""

from policies import (
    container_rules,
    kong_rules,
    monitoring_rules,
    neon_rules,
    qdrant_rules,
    service_rules,
    stack_rules,
    tls_rules,
)

PACK_NAME = "rag-infra-ha"
POLICIES = [
    *qdrant_rules.POLICIES,
    *neon_rules.POLICIES,
    *kong_rules.POLICIES,
    *monitoring_rules.POLICIES,
    *container_rules.POLICIES,
    *service_rules.POLICIES,
    *stack_rules.POLICIES,
    *tls_rules.POLICIES,
]
