"""End-to-end tests: what the program renders, created and run on a real Docker engine."""
