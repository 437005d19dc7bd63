"""Benchmarks (``make bench``): each module prints its figures and writes ``results/<name>.json``."""
