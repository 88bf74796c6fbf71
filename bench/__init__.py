"""Benchmarks of feed-harness: ``python -m bench`` prints the figures."""
