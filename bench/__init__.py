"""Benchmarks: our model against peer recognizers on the same dev sets (bench-only extras)."""
