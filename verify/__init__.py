"""Post-deploy checks of a stack, read from its outputs: `python -m verify --stack NAME`.

One module per tier (`neon`, `qdrant`, `kong`); each check is a `Check` with what it saw, so a
failed one names the problem. The load test, the failover drill and the gate inside `pulumi up`
(issue #14) build on this.
"""
