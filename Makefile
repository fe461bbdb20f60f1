# Two set-up commands (see README): `make demo` and `make test`. Both build the venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	PUKARA_HOME=$${PUKARA_HOME:-$(CURDIR)/.demo-home} $(BIN)/pukara demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy pukara collectors enrichment cases playbooks tui

unit: install
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint unit

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
