# perprisk — the two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The main job: the default stress scenario — the real 2025-10-10/11 BTCUSDT crash (both days, 2,880 one-minute
# candles) through 100,000 leveraged accounts — writing reports/stress-summary.json and reports/stress-report.html.
DEMO_ARGS ?= --json reports/stress-summary.json

demo: $(STAMP)
	$(BIN)/perprisk stress $(DEMO_ARGS)

test: $(STAMP)
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -n 2 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) reports .pytest_cache .hypothesis
