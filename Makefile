# Two commands on a fresh machine: `make run` (the whole flow locally) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Local defaults: no AWS account needed. Tests point AWS clients at moto themselves.
export AWS_DEFAULT_REGION ?= us-east-1
export SAGEMAKER_VALIDATE_ROLE := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test venv lock bench bench-scale bench-learning-curve clean help

help:
	@echo "make run    - set up .venv and run the whole flow locally (generate -> ETL -> pipeline)"
	@echo "make test   - set up .venv and run the test suite"
	@echo "make bench  - run the benchmarks in benchmarks/ (all but the two below)"
	@echo "make bench-scale - airfare run at 1x, 3x and 10x the default world (heavy: 10x needs hours on 2 cores)"
	@echo "make bench-learning-curve - metric vs training sample size on the world make run leaves in .lake"
	@echo "make lock   - re-resolve requirements{,-dev,-serve}.in into their .lock files"

venv: $(STAMP)

$(STAMP): requirements-dev.lock setup.py requirements.in requirements-dev.in
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/airfare run

test: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report=term:skip-covered

# bench_scale and bench_learning_curve run whole pipelines (minutes to hours): their own targets.
bench: $(STAMP)
	for b in benchmarks/bench_*.py; do case $$b in *bench_scale.py|*bench_learning_curve.py) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b || exit 1; done

bench-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_scale.py

bench-learning-curve: $(STAMP)
	$(BIN)/python benchmarks/bench_learning_curve.py

# Three locks: development (everything: the venv, CI), runtime (the pipeline image) and serving (the
# serving image). The runtime and serving sets are resolved within the development pins, so all
# three agree on every version they share.
lock:
	rm -rf /tmp/airfare-lock && $(PYTHON) -m venv /tmp/airfare-lock
	/tmp/airfare-lock/bin/pip install --quiet "pip==26.3" && /tmp/airfare-lock/bin/pip install --quiet -r requirements-dev.in
	(echo "# Pinned, resolved from requirements-dev.in with Python 3.11 (pip freeze). Regenerate: make lock"; \
	 /tmp/airfare-lock/bin/pip freeze --exclude-editable) > requirements-dev.lock
	for set in requirements requirements-serve; do \
	  rm -rf /tmp/airfare-lock-$$set && $(PYTHON) -m venv /tmp/airfare-lock-$$set && \
	  /tmp/airfare-lock-$$set/bin/pip install --quiet "pip==26.3" && \
	  /tmp/airfare-lock-$$set/bin/pip install --quiet -r $$set.in -c requirements-dev.lock && \
	  (echo "# Pinned closure of $$set.in within requirements-dev.lock, Python 3.11. Regenerate: make lock"; \
	   /tmp/airfare-lock-$$set/bin/pip freeze --exclude-editable) > $$set.lock || exit 1; \
	done

clean:
	rm -rf $(VENV) .lake runs .pytest_cache
