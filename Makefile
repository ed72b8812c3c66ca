# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    set up .venv, migrate, serve the API and the worker (SQLite, log push provider)
#   make test   set up .venv, run the whole suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.PHONY: run test lint migrate worker bench bench-smoke wrk clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found %s)" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

run: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/lint-imports

migrate: $(STAMP)
	$(VENV)/bin/flask --app app migrate

worker: $(STAMP)
	$(VENV)/bin/flask --app app worker

# Benchmarks need PostgreSQL and Redis on this machine, and wrk (Debian's package).
wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)); } || { echo "install wrk: apt-get install wrk" >&2; exit 1; }

bench: $(STAMP) wrk
	$(PY) -m bench.run

bench-smoke: $(STAMP) wrk
	$(PY) -m bench.run --smoke

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
