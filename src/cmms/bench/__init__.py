"""Benchmark harnesses behind `cmms bench` (outside the pure core: they time things)."""
