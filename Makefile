# Two set-up commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8501

.PHONY: run test bench lint clean

$(INSTALLED): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

run: $(INSTALLED)
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT)

# The Snowflake CLI pins packages of its own, so it gets a virtualenv of its own (for the hosting tests).
SNOWCLI_VENV := .venv-snowcli
SNOWCLI_INSTALLED := $(SNOWCLI_VENV)/.installed

$(SNOWCLI_INSTALLED): requirements-snowcli.txt
	$(PYTHON) -m venv $(SNOWCLI_VENV)
	$(SNOWCLI_VENV)/bin/python -m pip install --quiet -r requirements-snowcli.txt
	touch $(SNOWCLI_INSTALLED)

test: $(INSTALLED) $(SNOWCLI_INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m pytest

BENCH_INSTALLED := $(VENV)/.installed-bench

$(BENCH_INSTALLED): $(INSTALLED) requirements-bench.txt
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $(BENCH_INSTALLED)

bench: $(BENCH_INSTALLED)
	$(PY) -m benchmarks

lint: $(INSTALLED)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) $(SNOWCLI_VENV) .pytest_cache .ruff_cache
