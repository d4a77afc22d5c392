# Two commands on a fresh machine with Python 3.11+ and make:
#   make run   - install, migrate, seed a demo catalog and serve the API on embedded defaults
#   make test  - install and run the whole test suite (embedded, then PostgreSQL + Redis when reachable)
#   make bench - the benchmarks against PostgreSQL + Redis, each beside its floor (prints ratios)

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: console-screenshots install run test lint format bench

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI machines), every `payql`
# process would otherwise compile each module it imports again (about 4 s of a command's 6 s here).
$(VENV)/.installed: uv.lock pyproject.toml Makefile | $(UV)
	$(UV) sync --frozen --compile-bytecode --python "$$($(PYTHON) -c 'import sys; print(sys.executable)')"
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/payql migrate
	$(VENV)/bin/payql seed-demo
	$(VENV)/bin/payql serve

test: install
	$(VENV)/bin/python -m tests.run_suites $(ARGS)

# The README's console and shop screenshots: their browser tests, saving each page they visit.
console-screenshots: install
	PAYQL_CONSOLE_SCREENSHOTS=docs/console $(VENV)/bin/python -m pytest tests/console tests/shop -q

bench: install
	$(VENV)/bin/python -m bench.fanout
	$(VENV)/bin/python -m bench.checkout --ceiling
	$(VENV)/bin/python -m bench.sandbox
	$(VENV)/bin/python -m bench.receipt_mime
	$(VENV)/bin/python -m bench.sent_statements
	$(VENV)/bin/python -m bench.webhooks
	$(VENV)/bin/python -m bench.webhooks --jobs deferred
	$(VENV)/bin/python -m bench.webhooks --jobs worker
	$(VENV)/bin/python -m bench.worker
	$(VENV)/bin/python -m bench.scaling
	$(VENV)/bin/python -m bench.burst
	PAYQL_TEST_BACKEND=servers $(VENV)/bin/python -m bench.chaos

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
