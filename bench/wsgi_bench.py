"""The bench's WSGI entry point: ``gunicorn bench.wsgi_bench:app``.

The app exactly as ``wsgi.py`` makes it, plus the baseline blueprint (``bench.baseline``) when
``BENCH_BASELINE=1``. Production's ``wsgi.py`` and ``create_app`` never register it.
"""

import os

from bench import baseline
from consult import create_app

app = create_app()
if os.environ.get("BENCH_BASELINE") == "1":
    baseline.register(app)
