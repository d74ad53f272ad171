"""Tests of the post-deploy checks."""
