# Two commands do everything on a fresh machine with Python >= 3.11:
#   make demo   -- create .venv, install, run the demo on the shipped suites
#   make test   -- create .venv, install, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,traces,dask,bench]"
	@# numba is optional (the numpy kernels are the reference); a Python without its wheels still installs
	$(BIN)/python -m pip install --quiet -e ".[fast]" || echo "numba not installed: the numpy kernels only"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/slimcaching demo --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest

# the tests marked slow (deselected by `make test`)
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) demo-output .pytest_cache
