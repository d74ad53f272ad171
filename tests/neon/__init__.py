"""Tests of neon."""
