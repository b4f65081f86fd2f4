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

.PHONY: env book pdf test unit nbval nbval-alt notebooks results-pages clean

env: $(STAMP)

# torch comes from PyTorch's CPU wheel index (a few hundred MB; PyPI's torch for Linux is the CUDA build,
# several GB with its nvidia packages). For a CUDA build: make env TORCH_INDEX=https://download.pytorch.org/whl/cu126
# Where that index cannot be reached (a machine with a local wheel), pip's default source is used instead.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PIN := $(shell grep -E '^torch==' requirements.txt)

$(STAMP): requirements.txt pyproject.toml
	@echo "Installing the pinned environment into $(VENV) (first time only; 47 to 89 s measured here with a warm pip cache)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --timeout 15 --retries 1 --index-url $(TORCH_INDEX) "$(TORCH_PIN)" \
	    || $(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)
	@echo "Environment ready: $(VENV)"


book: env
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html: open _build/html/index.html in a browser."

# The whole book as one PDF (XeLaTeX; Debian: texlive-xetex texlive-latex-extra texlive-fonts-recommended
# latexmk fonts-freefont-otf lmodern): _build/latex/concrete_book.pdf
pdf: env
	$(BIN)/jupyter-book build . --builder pdflatex
	@# latexmk exits 0 on a missing glyph, an undefined reference or a line cut off: fail on them here
	$(BIN)/python .ci/latex_log_check.py _build/latex/concrete_book.log
	@echo "The PDF is _build/latex/concrete_book.pdf"

test: env
	$(BIN)/python -m pytest tests chapters --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=600 --durations=15 -q

unit: env
	$(BIN)/python -m pytest tests -q

nbval: env
	$(BIN)/python -m pytest chapters --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -q

# The chapters again under another numeric setting (.ci/run calls it after `make test`): one thread, and
# the kernels of an older x86-64 CPU in numpy (its SSE4.2 baseline), OpenBLAS (Sandybridge: no FMA),
# PyTorch (no vectorisation), MKL and oneDNN (SSE4), and glibc's libm (no FMA/AVX2, which moves even the
# seeded random draws in their last bit). Every checked output must still match (see the README).
NBVAL_ALT_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Sandybridge \
	NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL AVX512_SPR" ATEN_CPU_CAPABILITY=default \
	MKL_ENABLE_INSTRUCTIONS=SSE4_2 ONEDNN_MAX_CPU_ISA=SSE41 GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,-AVX512F

nbval-alt: env
	env $(NBVAL_ALT_ENV) $(BIN)/python -m pytest chapters --nbval-lax --nbval-current-env \
	    --nbval-cell-timeout=600 --durations=5 -q

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
