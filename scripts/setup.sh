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

# Debian packages, each with what it is for. Every Python dependency ships a wheel, so no
# compiler is needed.
packages=(
  python3 python3-venv   # the interpreter and its virtual environments (3.11 or newer)
  fontconfig             # lets the start-up check find the Chinese font (fc-list)
  fonts-noto-cjk         # Noto Sans CJK SC/TC: printed notices in Chinese, not empty boxes
  fonts-noto-color-emoji # emoji in minutes, opinions and names print (in colour) too
  libpango-1.0-0         # WeasyPrint's text layout (PDF notices, ballots, letters)
  libpangoft2-1.0-0      # WeasyPrint's font loading
  libharfbuzz-subset0    # WeasyPrint's font subsetting: 0.3 s per notice instead of 2-9 s
)
if [ "$want_test" = 1 ]; then
  packages+=(
    chromium             # the browser the browser tests (tests/e2e) drive through Playwright
    poppler-utils        # pdftoppm and pdffonts: the tests turn PDFs into pictures and fonts
    nodejs npm           # npm ci installs axe-core, the accessibility checker of tests/e2e
  )
fi

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

# Python packages come from requirements.lock only: exact versions, each file checked against
# its hash. A lock that no longer matches pyproject.toml is refused before anything is
# installed (`make lock` makes a new one; README, "Dependencies").
python3 scripts/lock.py --check >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
# Reinstall only when the lock (or this script) changed since the last successful run.
stamp=".venv/.setup-stamp"
digest=$(cat requirements.lock scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  # Runtime and development packages alike (one lock): both commands of the README use them.
  # pip itself and setuptools are in the lock too, replacing what the venv started with.
  .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes \
    -r requirements.lock
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
