# Two entry points (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install install-test demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: the pinned CPU wheel; pyproject only asks for torch>=2.2
	$(PIP) install -q torch==2.13.0

install: $(PY)
	$(PIP) install -q -e .

install-test: $(PY)
	$(PIP) install -q -e '.[test]'

demo: install
	$(VENV)/bin/jtorch demo samples -o out/demo --force

test: install-test
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 tests

bench: $(PY)
	$(PIP) install -q -e '.[bench,test]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf out build *.egg-info
