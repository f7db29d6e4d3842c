"""Benchmark harness (DESIGN section 7): `python -m bench`, or `make bench`."""
