#!/usr/bin/env bash
# Install everything consult needs on Debian 12: system packages (when run as root), a virtual
# environment in .venv with the Python dependencies, and the compiled translations.
#   scripts/setup.sh          what running the app needs (PDF libraries, the CJK font)
#   scripts/setup.sh --test   also what the tests need (chromium for browser tests, poppler,
#                             node and npm for axe-core, the accessibility checker)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Every Python dependency ships a wheel: no compiler is needed. The CJK font keeps printed
# notices from rendering as empty boxes; pango and harfbuzz-subset are WeasyPrint's.
packages=(python3 python3-venv fontconfig fonts-noto-cjk
          fonts-noto-color-emoji  # emoji in minutes, opinions and names print in colour
          libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0)
[ "$want_test" = 1 ] && packages+=(chromium poppler-utils nodejs npm)

missing=()
for pkg in "${packages[@]}"; do
  # A python3 that can make virtual environments is enough, wherever it comes from.
  if [ "$pkg" = python3 ] || [ "$pkg" = python3-venv ]; then
    if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
      continue
    fi
  fi
  # Any node with its npm will do (NodeSource's nodejs bundles npm, Debian's does not).
  if [ "$pkg" = nodejs ] || [ "$pkg" = npm ]; then
    if command -v node >/dev/null && command -v npm >/dev/null; then
      continue
    fi
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "Installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Missing Debian packages (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "consult needs Python 3.11 or newer" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
# Reinstall only when pyproject.toml (or this script) changed since the last successful run.
stamp=".venv/.setup-stamp"
[ "$want_test" = 1 ] && stamp="$stamp-test"
digest=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  # The app runs from this folder, so only the declared dependencies are installed.
  requirements=$(.venv/bin/python - "$want_test" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
wanted = list(project["dependencies"])
if sys.argv[1] == "1":
    wanted += project["optional-dependencies"]["dev"]
print("\n".join(wanted))
PY
)
  # A venv starts with the setuptools its Python shipped (3.11: 65.5, with known
  # vulnerabilities that pip-audit reports); keep it current like pip.
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip setuptools
  echo "$requirements" | .venv/bin/python -m pip install -q --disable-pip-version-check -r /dev/stdin
  echo "$digest" > "$stamp"
fi

.venv/bin/pybabel -q compile -d translations

# The browser tests inject axe-core from npm, pinned by tests/e2e/package-lock.json; like pip
# above, npm ci runs again only when the lock file changed (or node_modules went missing).
if [ "$want_test" = 1 ]; then
  e2e=tests/e2e
  npm_stamp="$e2e/node_modules/.setup-stamp"
  npm_digest=$(sha256sum "$e2e/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_digest" ] \
      || [ ! -f "$e2e/node_modules/axe-core/axe.min.js" ]; then
    (cd "$e2e" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$npm_digest" > "$npm_stamp"
  fi
fi
