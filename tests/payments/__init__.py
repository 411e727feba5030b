"""Tests of marketplace.payments."""
