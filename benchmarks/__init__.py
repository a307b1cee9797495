"""Benchmarks of lava-convert (run with `make bench`)."""
