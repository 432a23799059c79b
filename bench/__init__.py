"""Benchmarks: each one builds its own data in a scratch instance, measures, and writes its
results to ``bench/results/<name>.json`` and ``.md``. Run ``python -m bench --help``."""
