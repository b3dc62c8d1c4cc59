# Two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test bench lint clean snowflake-app reliability

$(INSTALLED): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

run: $(INSTALLED)
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

# The Snowflake CLI pins its own Snowpark, so it gets a virtualenv of its own for the hosting tests.
.venv-snowcli/.installed: requirements-snowcli.txt
	$(PYTHON) -m venv .venv-snowcli
	.venv-snowcli/bin/python -m pip install --quiet -r requirements-snowcli.txt
	touch $@

# The Streamlit floor: .venv's packages with only Streamlit swapped for the newest version the warehouse
# runtime offers (environment.yml), so the AppTest suite runs on both Streamlits.
FLOOR := .venv-streamlit-floor
FLOOR_STREAMLIT := $(shell sed -n 's/^ *- streamlit=\([0-9.]*\).*/\1/p' environment.yml)

$(FLOOR)/.installed: $(INSTALLED) environment.yml
	rm -rf $(FLOOR)
	$(PYTHON) -m venv $(FLOOR)
	$(PY) -c 'import site; print(site.getsitepackages()[0])' > $$($(FLOOR)/bin/python -c 'import site; print(site.getsitepackages()[0])')/flurry-venv.pth
	$(FLOOR)/bin/python -m pip install --quiet streamlit==$(FLOOR_STREAMLIT)  # and only what it needs beyond .venv
	touch $@

APPTEST_SUITE := tests/test_app.py tests/test_app_forecast.py tests/test_snowflake_app.py tests/test_hosted_apps.py

test: $(INSTALLED) .venv-snowcli/.installed $(FLOOR)/.installed
	$(PY) -m ruff check .
	$(PY) -m mypy backend
	$(PY) -m pytest
	$(FLOOR)/bin/python -m pytest -p no:cacheprovider -m floor $(APPTEST_SUITE)

# Bad input, faults, concurrency and security (tests/reliability, also part of `make test`): the summary table
# of cases tried, failures, rows lost and tracebacks seen, printed and written to reliability.json. Here the
# processes are killed 30 times (FLURRY_KILLS); `make test` kills them 12 times to keep the suite short.
reliability: $(INSTALLED)
	FLURRY_KILLS=30 FLURRY_RELIABILITY_JSON=reliability.json $(PY) -m pytest tests/reliability
	@cat reliability.json

BENCH_INSTALLED := $(VENV)/.installed-bench

$(BENCH_INSTALLED): $(INSTALLED) requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_INSTALLED)

bench: $(BENCH_INSTALLED)
	$(PY) -m benchmarks

# The files `snow streamlit deploy` publishes need the packages the warehouse runtime cannot install (FLAML).
snowflake-app: $(INSTALLED)
	$(PY) -m scripts.snowflake_app

lint: $(INSTALLED)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .venv-snowcli $(FLOOR) .pytest_cache .ruff_cache
