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

# Two pytest-xdist workers (the end-to-end tests together on one of them, in order), then
# the one test that stops and starts the shared RabbitMQ, alone, with its personal-data scan.
test: install services browser lint
	$(BIN)/pytest -n 2 --dist loadgroup -m "not broker_restart"
	$(BIN)/pytest \
	  tests/e2e/test_delivery_faults.py::test_a_broker_restart_during_delivery_loses_nothing \
	  tests/e2e/test_zz_no_personal_data.py

bench: install services
	$(BIN)/python bench/intake.py
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/delivery.py

clean:
	rm -rf var/*.db var/*.db-* .pytest_cache .mypy_cache  # var/*.keys stays: data needs it
