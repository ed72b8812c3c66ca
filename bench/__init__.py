"""Benchmarks: `make bench` (full) and `make bench-smoke` (tiny, for CI)."""
