#!/usr/bin/env bash
# Set everything up, migrate the SQLite database in instance/, load the demo data and serve the
# app on http://127.0.0.1:5000 (Ctrl+C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p instance
# A random secret key, kept across restarts so sessions survive them.
[ -s instance/secret_key ] || .venv/bin/python -c 'import secrets; print(secrets.token_hex(32))' > instance/secret_key
export SECRET_KEY="${SECRET_KEY:-$(cat instance/secret_key)}"
export CONSULT_CONFIG="${CONSULT_CONFIG:-development}"
.venv/bin/flask --app wsgi db upgrade
.venv/bin/flask --app wsgi seed-demo
echo "Serving on http://127.0.0.1:5000"
exec .venv/bin/gunicorn --workers 2 --bind 127.0.0.1:5000 --access-logfile - wsgi:app
