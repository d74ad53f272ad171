"""The Neon tier: object storage, controller, broker, pageserver, safekeepers, compute, branches."""
