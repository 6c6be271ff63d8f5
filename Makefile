# One entry point for the checks CI runs. `make check` = install the pinned tools into .venv,
# then format, lint, types, import contracts and tests.
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: check venv fmt lint types imports test bench lock

check: fmt lint types imports test

# The venv is made (or brought up to date, the C part of the format layer compiled again)
# whenever pyproject.toml, setup.py, constraints.txt or that C source changes.
venv: $(INSTALLED)

$(INSTALLED): pyproject.toml setup.py constraints.txt schemas/_canonical.c
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

fmt: $(INSTALLED)
	$(PY) -m ruff format --check .

lint: $(INSTALLED)
	$(PY) -m ruff check .

types: $(INSTALLED)
	$(PY) -m mypy

imports: $(INSTALLED)
	$(VENV)/bin/lint-imports

test: $(INSTALLED)
	$(PY) -m pytest

bench: $(INSTALLED)
	$(PY) -m bench.formats

# Rewrites constraints.txt from the newest releases that pyproject.toml allows: a deliberate bump,
# reviewed and committed like any other change.
lock:
	rm -rf .lock-venv
	python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	{ sed -n '1,/^$$/p' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .lock-venv
