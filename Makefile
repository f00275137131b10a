# The two commands: `make run` (serve the app) and `make test` (run the tests). Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test lint audit bench clean

$(VENV)/.runtime: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(VENV)/.runtime  ## serve http://127.0.0.1:5000 (demo provider unless GROQ_API_KEY is set)
	$(PY) app.py

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
