"""Tests of marketplace.network."""
