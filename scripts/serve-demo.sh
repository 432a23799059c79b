#!/usr/bin/env bash
# Set everything up, migrate the SQLite database in instance/, load the demo data and serve the
# app on http://127.0.0.1:5000 (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The secret key: SECRET_KEY if set, else instance/secret_key, which the first command below
# makes with a random key; the server and every later command read the same file.
export CONSULT_CONFIG="${CONSULT_CONFIG:-development}"
.venv/bin/flask --app wsgi db upgrade
.venv/bin/flask --app wsgi demo seed
echo "Serving on http://127.0.0.1:5000"
exec .venv/bin/gunicorn --workers 2 --bind 127.0.0.1:5000 --access-logfile - wsgi:app
