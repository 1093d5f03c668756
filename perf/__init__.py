"""Benchmarks and replay tools (python -m perf.<tool>)."""
