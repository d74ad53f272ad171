"""The monitoring tier: Prometheus, its scrape jobs and alert rules."""
