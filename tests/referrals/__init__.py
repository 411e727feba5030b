"""Tests of marketplace.referrals."""
