"""Tests of the generated documentation."""
