"""Reference implementations kept for property tests and before/after benchmarks."""
