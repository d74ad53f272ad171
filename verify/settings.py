"""Settings of the post-deploy gate (`rag-infra:verify`)."""

from components.platform.settings import FLAG, ConfigModel, whole


class VerifySettings(ConfigModel):
    """The checks `pulumi up` runs after every tier and migration (python -m verify)."""

    enabled: FLAG = True
    p95_ms: whole(1, 10_000) = 10
    """The plan's search latency target: P95 of the Neon vector and trigram queries, in ms."""
    runs: whole(2, 1000) = 20
    """Queries per latency check."""
