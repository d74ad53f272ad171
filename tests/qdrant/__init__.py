"""Tests of qdrant."""
