# Quick start: `make demo` runs the demo, `make test` runs the whole test suite.
# Both create a local virtual environment (.venv) with tapstack and its test extra installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-lan clean

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "make: cannot create a virtual environment: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tapstack demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/ping_bench.py

bench-lan: $(STAMP)
	$(BIN)/python bench/lan_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
