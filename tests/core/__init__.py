"""Whole-app concerns: migrations and the database schema."""
