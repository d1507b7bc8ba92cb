# Two commands on a fresh machine: `make run` (the whole flow locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Local defaults: no AWS account needed. Tests point AWS clients at moto themselves.
export AWS_DEFAULT_REGION ?= us-east-1
export SAGEMAKER_VALIDATE_ROLE := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test venv lock bench clean help

help:
	@echo "make run    - set up .venv and run the whole flow locally (generate -> ETL -> pipeline)"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - run the benchmarks in benchmarks/"
	@echo "make lock   - re-resolve requirements.in into requirements.lock"

venv: $(STAMP)

$(STAMP): requirements.lock setup.py requirements.in
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/airfare run

test: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock:
	rm -rf /tmp/airfare-lock && $(PYTHON) -m venv /tmp/airfare-lock
	/tmp/airfare-lock/bin/pip install --quiet "pip==26.3" && /tmp/airfare-lock/bin/pip install --quiet -r requirements.in
	(echo "# Pinned, resolved from requirements.in with Python 3.11 (pip freeze). Regenerate: make lock"; \
	 /tmp/airfare-lock/bin/pip freeze --exclude-editable) > requirements.lock

clean:
	rm -rf $(VENV) .lake runs .pytest_cache
