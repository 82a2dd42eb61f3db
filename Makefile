# Two commands do everything on a fresh machine with Python >= 3.11:
#   make demo   -- create .venv, install, run the demo on the shipped suites
#   make test   -- create .venv, install, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-min check-latex bench install clean

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
# the fast tests in a separate venv at exactly the declared lower bounds
# (constraints-min.txt); rebuilt whenever either file changes
VENV_MIN  := .venv-min
STAMP_MIN := $(VENV_MIN)/.installed

$(STAMP_MIN): pyproject.toml constraints-min.txt
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install --quiet -c constraints-min.txt -e ".[test,traces,dask,bench,fast]"
	$(VENV_MIN)/bin/python -m pip check
	$(VENV_MIN)/bin/python -m pip freeze --exclude-editable > $(VENV_MIN)/freeze.txt
	touch $(STAMP_MIN)

test-min: $(STAMP_MIN)
	$(VENV_MIN)/bin/python -m pytest -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) $(VENV_MIN) demo-output latex-check .pytest_cache
