# Quick start: `make demo` runs the demo, `make test` runs the whole test suite.
# Both create a local virtual environment (.venv) with tapstack and its test extra installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-lan bench-queues bench-flood bench-robustness bench-tcp clean

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { echo "make: cannot create a virtual environment: install python3-venv (apt-get install python3-venv)"; exit 1; }
	@echo "make: installing tapstack and its test extra into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/pip install --upgrade pip > $(VENV)/install.log 2>&1 \
	  && $(BIN)/pip install -e '.[test]' >> $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "make: installing tapstack failed (the log is above)"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tapstack demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The speed report (docs/benchmark.md): every responder not pinned and pinned, 5 rounds, in one run.
# It needs root (network namespaces, TAP/TUN devices): checked before anything is installed.
bench:
	@[ "$$(id -u)" -eq 0 ] || { echo "make bench: needs root (it creates network namespaces and TAP/TUN devices): sudo make bench"; exit 2; }
	@$(MAKE) --no-print-directory $(STAMP)
	$(BIN)/python bench/ping_bench.py

bench-lan: $(STAMP)
	$(BIN)/python bench/lan_bench.py

bench-queues: $(STAMP)
	$(BIN)/python bench/queue_bench.py

bench-flood: $(STAMP)
	$(BIN)/python bench/flood_bench.py

# Issue 16's TCP figures (docs/benchmark.md "TCP"): tapstack against the kernel's TCP; root.
bench-tcp: $(STAMP)
	$(BIN)/python bench/tcp_bench.py

# Issue 13's robustness figures (docs/benchmark.md "Robustness figures"): root, ping installed.
bench-robustness: $(STAMP)
	$(BIN)/python bench/robustness_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
