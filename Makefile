# Two commands do everything on a fresh machine with python3, make and git:
#   make dev    the whole local stack (Temporal, Stripe and SMTP stand-ins, worker, API, demo data)
#   make test   lint, type-check, the import-layer contracts and the full test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

.PHONY: dev test lint typecheck pytest slow soak bench clean install system-deps deploy-check record-histories

# Importing the product compiles ~200 modules; without cached bytecode every process
# (pytest, each worker subprocess) pays ~20 s for it. Keep the cache on, and precompile.
unexport PYTHONDONTWRITEBYTECODE

# Each step says what it does and when (`make dev` on a fresh clone spends most of its time here).
STAMP = @echo "[$$(date +%H:%M:%S)]"
PACKAGES := activities backoffice blob_storage devtools documents email_providers payment_adapters runtime \
	ticketing workers workflows

$(BIN)/uv:
	$(STAMP) "creating the virtualenv in $(VENV) and installing uv $(UV_VERSION)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

# The stamp makes a second `make dev` skip the install; the product's own modules are compiled
# here too (uv compiles only the dependencies), so no process pays for it at start-up.
$(VENV)/.synced: $(BIN)/uv pyproject.toml uv.lock
	$(STAMP) "installing the dependencies (uv sync, with bytecode)..."
	$(BIN)/uv sync --frozen --quiet --compile-bytecode
	$(STAMP) "compiling the product's modules..."
	$(BIN)/python -m compileall -q -j 0 $(PACKAGES) >/dev/null
	$(STAMP) "installed"
	touch $@

install: $(VENV)/.synced

# What the suite needs from the operating system: Debian's Chromium (the real-browser
# test drives it through Playwright; nothing downloads a browser) and promtool (alert rules).
# Installed only when missing.
system-deps:
	@command -v chromium >/dev/null && command -v promtool >/dev/null || \
		{ echo "installing chromium and promtool from Debian's packages"; \
		  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium prometheus >/dev/null; }

dev: export TICKETOPS_DEV_T0 := $(shell date +%s.%N)
dev: install
	$(STAMP) "starting ticketops dev (ports: TICKETOPS_DEV_{TEMPORAL,UI,API,STRIPE,SMTP}_PORT)"
	$(BIN)/ticketops dev

test: install system-deps deploy-check
	bash deploy/ensure-postgres.sh
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(BIN)/pytest

# hadolint, compose schema, kustomize + kubernetes-validate, promtool: offline, no engine or cluster.
deploy-check: install system-deps
	BIN=$(BIN) bash deploy/check.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

slow: install
	bash deploy/ensure-postgres.sh
	$(BIN)/pytest -m slow

# The replay corpus (tests/replay/histories): the workflow tests' runs, encrypted with the test key.
record-histories: install
	$(BIN)/python -m tests.replay.record

# The fault soak: its own stack on free ports, traffic and faults at once, `ticketops audit` as
# the oracle (README, "Operations"). SOAK_MINUTES sets how long traffic and faults run.
SOAK_MINUTES ?= 5
soak: install
	$(BIN)/python -m devtools.soak --minutes $(SOAK_MINUTES)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
