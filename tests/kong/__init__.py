"""Tests of kong."""
