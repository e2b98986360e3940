# The two commands: `make demo` and `make test`. Each prepares what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint services browser install bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

services:
	@scripts/services.sh

browser:
	@scripts/browser.sh

demo: install services
	@$(BIN)/casebridge demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Linters, the end-to-end tests and the rest side by side, then the broker restart alone:
# scripts/test.sh.
test: install services browser
	@scripts/test.sh

bench: install services
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/delivery.py

clean:
	rm -rf var/*.db var/*.db-* .pytest_cache .mypy_cache  # var/*.keys stays: data needs it
