# dxassist — the two commands that do all set-up on a fresh machine:
#   make run    install dxassist and run the worklist service (SQLite, shipped model,
#               in-process worker) on http://127.0.0.1:8000/
#   make test   install everything (incl. the training extra) and run lint, types, tests
# and:
#   make demo   read the real chest CR shipped in pydicom-data from the command line
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check

.PHONY: run demo test lint bench clean

$(VENV)/.runtime: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "dxassist needs Python 3.11, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e . pydicom-data
	touch $@

# torch first, pinned, so pip takes the local CPU wheel instead of a CUDA build
$(VENV)/.dev: $(VENV)/.runtime
	$(PIP) torch==2.13.0
	$(PIP) -e '.[train,dev]'
	touch $@

run: $(VENV)/.runtime
	$(VENV)/bin/dxassist serve

demo: $(VENV)/.runtime
	$(VENV)/bin/dxassist demo

test: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

bench: $(VENV)/.dev
	$(PY) bench/read_throughput.py
	$(PY) bench/service_load.py

clean:
	rm -rf $(VENV) dxassist-heatmaps .pytest_cache .mypy_cache .ruff_cache
	@echo 'dxassist-data/ (received studies, database) is kept; remove it yourself if you mean to'
