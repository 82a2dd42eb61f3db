"""Performance benchmarks of slimcaching, outside the installed package.

Run from the repository root: ``make bench`` (``python -m benchmarks.run``),
or one area with ``python -m benchmarks.perf_<area>``.
"""
