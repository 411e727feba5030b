"""Tests of marketplace.notifications."""
