"""Tests of marketplace.accounts."""
