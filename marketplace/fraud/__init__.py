"""Fraud signals: what about a paid chain's members suggests one person playing several of them
(docs/fraud.md)."""
