"""Architecture diagrams drawn from the stack's own resource graph (`python -m docs.diagrams`)."""
