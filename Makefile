PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test install bench clean translations extract-messages update-messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Translations (DEVELOPERS.md "Translations"): the .mo catalogues are built, not
# committed; run, serve and test compile the ones older than their .po first.
BABEL := $(VENV)/bin/pybabel
CATALOGUES := webapp/translations
MO_FILES := $(patsubst %.po,%.mo,$(wildcard $(CATALOGUES)/*/LC_MESSAGES/messages.po))
BABEL_KEYWORDS := -k _l -k lazy_gettext -k _lp:1c,2 -k lazy_pgettext:1c,2

$(CATALOGUES)/%/LC_MESSAGES/messages.mo: $(CATALOGUES)/%/LC_MESSAGES/messages.po | $(STAMP)
	$(BABEL) compile --statistics -d $(CATALOGUES) -l $*

translations: $(MO_FILES)

extract-messages: $(STAMP)
	$(BABEL) extract -F babel.cfg $(BABEL_KEYWORDS) --no-location --sort-output -o $(CATALOGUES)/messages.pot .

update-messages: extract-messages
	$(BABEL) update -i $(CATALOGUES)/messages.pot -d $(CATALOGUES) --no-fuzzy-matching --ignore-obsolete

run: $(STAMP) translations
	$(PY) -m webapp.launcher

# Production: gunicorn (WEB_CONCURRENCY), WORKERS RQ workers, one cron scheduler
serve: $(STAMP) translations
	$(PY) -m webapp.serve

# The suite in TEST_PROCS processes, then the tests marked serial (they restart
# the PostgreSQL server the others use) alone. Exit status 5 is "no tests
# selected", e.g. PYTEST_ARGS naming a file with no serial test.
TEST_PROCS ?= 3
test: $(STAMP) translations
	$(PY) -m pytest -n $(TEST_PROCS) -m "not serial" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ]

# The benchmark scripts' own packages (pandas, locust): bench/*.py --help says
# what each measures; the figures are in bench/RESULTS.md.
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	@echo "ready: $(PY) bench/SCRIPT.py --help"

clean:
	rm -rf $(VENV) instance/segmento.db* .pytest_cache
