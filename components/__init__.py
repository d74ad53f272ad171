"""rag-infra components: one package per tier (neon, qdrant, kong) plus platform, what they share.

Each tier package holds its ComponentResource(s), its pure config renderers, its dynamic
resources and its settings model; `components.settings` composes the tier models into the
whole stack configuration.
"""
