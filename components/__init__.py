"""rag-infra components: one ComponentResource per module, plus typed settings and renderers."""
