# Shortcuts for people working on consult. The README's two commands need no make.
PY := .venv/bin/python
FLASK := .venv/bin/flask --app wsgi
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: setup demo test test-pg lint check migration translate-update translate-compile translate-check \
        bench bench-quick lock upgrade audit

setup:            ## install everything, including what the tests need
	scripts/setup.sh --test

demo:             ## migrate, seed and serve on http://127.0.0.1:5000
	scripts/serve-demo.sh

test:             ## the whole suite on a scratch SQLite database
	scripts/test.sh

test-pg:          ## the whole suite on the local PostgreSQL
	TEST_DATABASE_URL=$(PG_URL) scripts/test.sh

bench:            ## pdf, scale and api; writes bench/results/latest.md, pdf.md, api.md (BENCH_ARGS="--db postgresql": latest-postgresql.md)
	$(PY) -m bench $(BENCH_ARGS)

bench-quick:      ## the benchmarks on tiny data, as CI runs them
	$(PY) -m bench --quick $(BENCH_ARGS)

lock:             ## after changing pyproject.toml: a new requirements.lock, keeping every version that fits
	$(PY) scripts/lock.py

upgrade:          ## every package to its newest fitting release (PACKAGE=name: only that one)
	$(PY) scripts/lock.py $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)

audit:            ## known vulnerabilities of the locked versions
	$(PY) scripts/audit_deps.py

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy

check: lint translate-check
	python3 scripts/lock.py --check
	$(FLASK) db check

migration:        ## make NAME="what changed": a new date-prefixed migration from the models
	$(FLASK) db migrate -m "$(NAME)"

translate-update: ## extract messages and merge them into every catalog
	$(FLASK) translate update

translate-compile:
	$(FLASK) translate compile

translate-check:  ## fail on any untranslated or fuzzy message
	$(FLASK) translate check
