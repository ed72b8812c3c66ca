"""Development tools the tests and the benchmarks share (an FCM-protocol server)."""
