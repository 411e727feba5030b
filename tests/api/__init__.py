"""The JSON API v1 across packages: who may call what."""
