#!/usr/bin/env bash
# Set everything up (including chromium for browser tests) and run the whole test suite.
# Extra arguments go to pytest. The database is a scratch SQLite file unless
# TEST_DATABASE_URL (or DATABASE_URL) names another, e.g. PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# In parallel, one worker per core (TEST_WORKERS=0 runs everything in this process); tests that
# share a live server or Redis stay together on one worker (tests/conftest.py).
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-auto}" --dist loadgroup "$@"
