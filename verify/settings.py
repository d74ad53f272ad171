"""Settings of the post-deploy gate (`rag-infra:verify`)."""

from components.platform.settings import FLAG, FRACTION, ConfigModel, whole


class LoadSettings(ConfigModel):
    """The load test's run and its pass marks (defaults: the plan's success criteria)."""

    enabled: FLAG = False
    seconds: whole(1, 3600) = 30
    rate: whole(1, 100_000) = 600
    """Requests per second the generator aims at."""
    p95_ms: whole(1, 10_000) = 10
    min_qps: whole(1, 100_000) = 500
    max_error_rate: FRACTION = 0.001
    """The plan's 0.1 %."""


class VerifySettings(ConfigModel):
    """The checks `pulumi up` runs after every tier and migration (python -m verify)."""

    enabled: FLAG = True
    p95_ms: whole(1, 10_000) = 10
    """The plan's search latency target: P95 of the Neon vector and trigram queries, in ms."""
    runs: whole(2, 1000) = 20
    """Queries per latency check."""
    load: LoadSettings = {}
    failover: FLAG = False
    """Also the failover drill (python -m verify --failover): stops one Qdrant node and one
    safekeeper under load, then starts them again, and stops the compute's task for Swarm to
    replace. Setting it is the consent the CLI asks for with --force in prod."""
