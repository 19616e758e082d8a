"""Benchmarks of the send path: `python -m bench.run` prints one table (see bench/README.md)."""
