"""Benchmarks run by command (``make bench``); they report rates and ratios, they assert nothing."""
