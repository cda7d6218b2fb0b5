# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3

.PHONY: setup demo test test-fast bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m harness.cli run scenarios/demo.yaml

# The tests also open report.html in headless Chromium: setup installs it for them.
# Two workers, one stack each, each with its own port range (tests/conftest.py).
test:
	LEDGERCHAOS_WITH_CHROMIUM=1 bash scripts/setup.sh
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q -n 2 --dist worksteal --durations=15 --cov --cov-report=term tests

# No stack: pure logic, in-memory fakes, the Locust child against the stub API.
test-fast:
	bash scripts/setup.sh
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest -q -n 2 --durations=10 tests -m "not integration"

bench: setup
	for b in benchmarks/bench_*.py; do $(PYTHON) $$b || exit 1; done

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
