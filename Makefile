# Two entry points for a fresh machine: `make run` opens the terminal on the built-in simulated
# market, `make test` runs every check. Both create .venv and install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench screenshot bundle clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The local CPU wheel; unpinned, torch would pull gigabytes of CUDA packages.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m terminal $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check terminal tests bench
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# -X faulthandler: a crash after pytest's own fault handler is gone (at exit) still prints
# the Python stacks of every thread.
test: lint typecheck
	QT_QPA_PLATFORM=offscreen $(PY) -X faulthandler -m pytest

bench: $(STAMP)
	$(PY) -m bench

screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m terminal screenshot screenshot.png

bundle: $(STAMP)
	bash build/build.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
