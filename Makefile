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

# Tools whose pins clash with .venv get a virtualenv each, for the Snowflake hosting tests:
# .venv-snowcli (the Snowflake CLI) and .venv-snowml (snowflake-ml-python, which needs pandas < 3).
SIDE_VENVS := .venv-snowcli/.installed .venv-snowml/.installed

.venv-%/.installed: requirements-%.txt
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet -r requirements-$*.txt
	touch $@

test: $(INSTALLED) $(SIDE_VENVS)
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
	rm -rf $(VENV) .venv-snowcli .venv-snowml .pytest_cache .ruff_cache
