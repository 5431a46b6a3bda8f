# `make test` and `make app` are all a fresh clone needs (Python 3 and the package registries).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test lint browser app screenshots demo-runs bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(VENV)/bin/ruff check explorer explorer_dashboard tests benchmarks notebooks

# The browser tests drive Debian's Chromium (Playwright cannot download its own here). Installed
# when missing and apt-get is at hand; otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		apt-get install -y -qq chromium >/dev/null 2>&1 || \
		(apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1) || \
		echo "note: could not install chromium; the browser tests will be skipped"

# Test files run two at a time on 2 cores (pytest-xdist; one worker per core, at most four),
# every process single-threaded: the tests' own children (trainers, servers, kernels) already
# fill the cores, and math libraries' threads spinning for one another made a parallel suite
# slower than a serial one (1,045 s against 710 s; 447 s single-threaded).
test: setup lint browser
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
		$(PY) -m pytest -q --numprocesses=auto --maxprocesses=4 --dist loadfile

# The dashboard on http://127.0.0.1:8501 (an empty runs/ receives the shipped demo runs); the
# same command a pip install gives: explorer app --help.
app: setup
	$(VENV)/bin/explorer app

# Screenshots of every page on the demo runs, into assets/ (for the README).
screenshots: setup browser
	$(PY) -m explorer_dashboard.screenshots assets

# Rebuild explorer/demo_runs from the shapes-demo presets and the class-change sweep (about 40
# minutes on 2 CPU cores).
demo-runs: setup
	bash demo/build_demo_runs.sh $(PY)

bench: setup
	$(PY) benchmarks/bench_augment.py
	$(PY) benchmarks/bench_loss.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_analysis.py
	$(PY) benchmarks/bench_umap_process.py
	$(PY) benchmarks/bench_theorem.py
	$(PY) benchmarks/bench_graph_page.py
	$(PY) benchmarks/bench_pages.py

# The tutorials in JupyterLab (installs JupyterLab into the venv on first use).
notebooks: setup
	$(PY) -m pip install --quiet -e '.[dev,notebooks]'
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
