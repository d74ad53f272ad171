"""What the tiers share: Docker hosts and the stack network, secrets, probes, durable Postgres."""
