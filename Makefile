# Two commands do everything on a fresh machine with Python >= 3.11:
#   make demo   -- create .venv, install, run the demo on the shipped suites
#   make test   -- create .venv, install, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow check-latex bench install clean

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

# Compile every kind of table (and demo-output/*.tex after `make demo`) in a minimal IEEEtran
# document; installs TeX Live and poppler from Debian's packages when pdflatex or pdftoppm is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
check-latex: $(STAMP)
	@command -v pdflatex >/dev/null && command -v pdftoppm >/dev/null || \
	  ($(SUDO) apt-get update && $(SUDO) apt-get install -y texlive-latex-extra texlive-science \
	   texlive-publishers poppler-utils)
	SLIMCACHING_LATEX_OUT=latex-check $(BIN)/python -m pytest -m "slow or not slow" -rs tests/test_latex.py
	@echo "compiled tables and a PNG of each page: latex-check/"

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) demo-output latex-check .pytest_cache
