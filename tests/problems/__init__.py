"""Tests of marketplace.problems."""
