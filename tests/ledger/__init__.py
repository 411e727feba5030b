"""Tests of marketplace.ledger."""
