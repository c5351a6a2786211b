# The two commands: `make demo` runs the application, `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_ENV := DEMO=true COMPLIANCE_READ_DOTENV=false DATABASE_URL=sqlite:///db.sqlite3 \
  COMPLIANCE_DATA_DIR=var/demo
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/compliance_bench

.PHONY: install demo test test-postgres bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --no-input
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo
	@echo "Serving the admin at http://127.0.0.1:8000/admin/ (Ctrl-C to stop)"
	$(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

test-postgres: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/compliance} $(BIN)/pytest $(PYTEST_ARGS)

bench: install
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python -m bench

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	DEMO=true COMPLIANCE_READ_DOTENV=false DATABASE_URL=sqlite://:memory: $(BIN)/python manage.py lintmigrations

# The demo's files: its database and its own data directory, var/demo (the ledger anchor,
# which left beside a new database would report the ledger cut, exports, archives and
# backups). Nothing else in var/, where a deployment run from a checkout keeps its data.
DEMO_FILES := db.sqlite3 db.sqlite3-journal var/demo

clean:
	rm -rf $(VENV) $(DEMO_FILES) .pytest_cache .ruff_cache
