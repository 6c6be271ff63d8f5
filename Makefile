# One entry point for the checks CI runs. `make check` = format, lint, types, import contracts, tests.
PY ?= python3

.PHONY: check fmt lint types imports test bench

check: fmt lint types imports test

fmt:
	$(PY) -m ruff format --check .

lint:
	$(PY) -m ruff check .

types:
	$(PY) -m mypy

imports:
	lint-imports

test:
	$(PY) -m pytest

bench:
	$(PY) -m bench.formats
