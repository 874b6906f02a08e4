"""Benchmarks of the ESMS numérique engine against baselines measured in the same run: `python -m benchmarks`.

See `docs/benchmarks.md` for what each case measures and the goals it is held to.
"""
