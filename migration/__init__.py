"""Migration engines (plain Python, no Pulumi), their command lines, and the dynamic resources."""
