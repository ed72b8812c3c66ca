"""The consent engine: the one place that decides whether a permission is in
effect for a user (docs/architecture.md)."""
