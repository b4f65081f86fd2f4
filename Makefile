# The Concrete Book: one command to build the book, one to run every test.
#   make book   create .venv from requirements.txt (if needed) and build the HTML book
#   make test   create .venv (if needed) and run the unit tests and every chapter under nbval
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two cores: keep BLAS/torch to one thread per process unless the caller says otherwise.
export OMP_NUM_THREADS ?= 2

.PHONY: env book test unit nbval notebooks results-pages clean

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@echo "Installing the pinned environment into $(VENV) (first time only; about a minute with a warm pip cache)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)
	@echo "Environment ready: $(VENV)"


book: env
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html: open _build/html/index.html in a browser."

test: env
	$(BIN)/python -m pytest tests chapters --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=600 --durations=15 -q

unit: env
	$(BIN)/python -m pytest tests -q

nbval: env
	$(BIN)/python -m pytest chapters --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -q

# Re-execute every chapter in place (regenerates the committed outputs).
notebooks: env
	for nb in chapters/*.ipynb; do \
	    (cd chapters && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	        --ExecutePreprocessor.timeout=600 $$(basename $$nb)) || exit 1; \
	done

clean:
	rm -rf _build

# Regenerate the pages made from data/results/ (Table 1 beside the paper, the Reproduce page);
# tests fail when the committed ones fall behind the result files.
results-pages: env
	$(BIN)/python -m concrete_ref.experiments.results table1 --preset book > /dev/null
	$(BIN)/python -m concrete_ref.experiments.results figure4 --preset book > /dev/null
	$(BIN)/python -m concrete_ref.experiments.results arity --preset book > /dev/null
	$(BIN)/python -m concrete_ref.experiments.reproduce
