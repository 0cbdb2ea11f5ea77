# joulecast developer entry points. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck bench install clean accuracy readme

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/joulecast estimate --example --gpu a100-pcie-40gb --format table

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy -p joulecast

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_estimate.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_mig.py
	$(BIN)/python benchmarks/bench_mig_serve.py
	$(BIN)/python benchmarks/bench_parsers.py
	$(BIN)/python benchmarks/bench_validate.py

accuracy: $(VENV)/.installed
	$(BIN)/joulecast validate --markdown docs/accuracy.md --plot docs/img/accuracy.png
	$(BIN)/python scripts/update_readme.py

readme: $(VENV)/.installed
	$(BIN)/python scripts/readme_outputs.py

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
