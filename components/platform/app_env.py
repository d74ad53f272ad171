"""The application's dotenv: the seed's feature flags plus the URLs of the tiers that exist."""

from __future__ import annotations

import pulumi


def render_app_env(
    neon_database_url: str | None,
    qdrant_cluster_url: str | None,
    kong_gateway_url: str | None,
    neon_pooled_url: str | None = None,
) -> str:
    """Dotenv text. A tier without a URL is not deployed: its flag is false and the
    application keeps using the old system for it (the seed's rollback switch)."""

    def flag(value: str | None) -> str:
        return "true" if value else "false"

    lines = [
        f"USE_NEON={flag(neon_database_url)}",
        f"QDRANT_CLUSTER_ENABLED={flag(qdrant_cluster_url)}",
        f"USE_KONG_GATEWAY={flag(kong_gateway_url)}",
    ]
    for key, value in (
        ("NEON_DATABASE_URL", neon_database_url),
        ("NEON_POOLED_URL", neon_pooled_url),
        ("QDRANT_CLUSTER_URL", qdrant_cluster_url),
        ("KONG_GATEWAY_URL", kong_gateway_url),
    ):
        if value:
            lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def app_env(
    neon_database_url: pulumi.Input[str] | None,
    qdrant_cluster_url: pulumi.Input[str] | None,
    kong_gateway_url: pulumi.Input[str] | None,
    neon_pooled_url: pulumi.Input[str] | None = None,
) -> pulumi.Output[str]:
    """`render_app_env` over outputs; always secret, since the Neon URL carries a password."""
    rendered = pulumi.Output.all(
        neon_database_url, qdrant_cluster_url, kong_gateway_url, neon_pooled_url
    ).apply(lambda urls: render_app_env(*urls))
    return pulumi.Output.secret(rendered)
