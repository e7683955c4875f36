# DicomServers — the two commands that do all set-up on a fresh machine:
#   make demo   the standalone window against an embedded default PACS
#   make test   lint (ruff), types (mypy) and the whole pytest suite on both Slicer dependency sets
PYTHON ?= python3
VENV   := .venv
VENV510 := .venv-510
PY     := $(VENV)/bin/python
PY510  := $(VENV510)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test setup system-deps lint types pytest pytest-510 screenshots bench clean

setup: $(VENV)/.installed $(VENV510)/.installed

$(VENV)/.installed: requirements/slicer-5.12.txt requirements/dev.txt requirements/lint.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/slicer-5.12.txt -r requirements/dev.txt -r requirements/lint.txt
	touch $@

$(VENV510)/.installed: requirements/slicer-5.10.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV510)
	$(PY510) -m pip install -q --upgrade pip
	$(PY510) -m pip install -q -r requirements/slicer-5.10.txt -r requirements/dev.txt
	touch $@

# Orthanc (+ DICOMweb and worklist plugins) and DCMTK, the real peers of the test suite.
system-deps:
	bash scripts/install-system-deps.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed system-deps
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

pytest-510: $(VENV510)/.installed system-deps
	QT_QPA_PLATFORM=offscreen $(PY510) -m pytest $(PYTEST_ARGS)

test: setup system-deps lint types pytest pytest-510

# The standalone window needs a display; without one (CI, ssh) it cannot open.
demo: $(VENV)/.installed
	PYTHONPATH=DicomServers $(PY) -m DicomServersUI.standalone --demo

screenshots: $(VENV)/.installed
	QT_QPA_PLATFORM=offscreen PYTHONPATH=DicomServers $(PY) -m DicomServersUI.screenshots build/screenshots

# Benchmarks (never part of `make test`): BENCH_ARGS=--quick for a short run.
BENCH_ARGS ?=
bench: $(VENV)/.installed system-deps
	QT_QPA_PLATFORM=offscreen $(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(VENV510) build .pytest_cache .mypy_cache .ruff_cache
