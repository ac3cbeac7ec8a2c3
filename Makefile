PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m webapp.launcher

# Production: gunicorn (WEB_CONCURRENCY), WORKERS RQ workers, one cron scheduler
serve: $(STAMP)
	$(PY) -m webapp.serve

# The suite in TEST_PROCS processes, then the tests marked serial (they restart
# the PostgreSQL server the others use) alone. Exit status 5 is "no tests
# selected", e.g. PYTEST_ARGS naming a file with no serial test.
TEST_PROCS ?= 3
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_PROCS) -m "not serial" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

clean:
	rm -rf $(VENV) instance/segmento.db* .pytest_cache
