# `make test` and `make app` are all a fresh clone needs (Python 3 and the package registries).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint app bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check explorer tests benchmarks notebooks

test: setup lint
	$(PY) -m pytest -q

# Until the dashboard lands: train the embedded default and print the probe table.
app: setup
	$(VENV)/bin/explorer train --preset shapes-demo

bench: setup
	$(PY) benchmarks/bench_augment.py
	$(PY) benchmarks/bench_loss.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_analysis.py

# The tutorials in JupyterLab (installs JupyterLab into the venv on first use).
notebooks: setup
	$(PY) -m pip install --quiet -e '.[dev,notebooks]'
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
