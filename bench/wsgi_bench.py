"""The bench's WSGI entry point: ``gunicorn bench.wsgi_bench:app``.

The app exactly as ``wsgi.py`` makes it, plus the baseline blueprint (``bench.baseline``) when
``BENCH_BASELINE=1``, and the write lock's clock (``bench.lockclock``) when ``BENCH_LOCK_LOG``
names a directory. Production's ``wsgi.py`` and ``create_app`` never register either.
"""

import os

from bench import baseline, lockclock
from consult import create_app

app = create_app()
if os.environ.get("BENCH_BASELINE") == "1":
    baseline.register(app)
if os.environ.get("BENCH_LOCK_LOG"):
    lockclock.install(os.environ["BENCH_LOCK_LOG"], os.environ.get("DATABASE_URL", ""))
