"""Benchmarks run by `make bench`; `python -m bench.engines` compares the serving engines."""
