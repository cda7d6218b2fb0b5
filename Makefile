# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3

.PHONY: setup demo test test-fast bench clean

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m harness.cli run scenarios/microburst.yaml

# The tests also open report.html in headless Chromium: setup installs it for them.
test:
	LEDGERCHAOS_WITH_CHROMIUM=1 bash scripts/setup.sh
	$(PYTHON) -m pytest -q tests

test-fast:
	LEDGERCHAOS_WITH_CHROMIUM=1 bash scripts/setup.sh
	$(PYTHON) -m pytest -q tests -m "not slow"

bench: setup
	for b in benchmarks/bench_*.py; do $(PYTHON) $$b || exit 1; done

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
